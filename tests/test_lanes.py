"""The slow lane names tests that exist, so a rename cannot move one into the fast lane."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SLOW_MODULES, SLOW_TESTS

TESTS = Path(__file__).parent


def test_every_slow_entry_names_an_existing_test() -> None:
    for module in SLOW_MODULES:
        assert (TESTS / module).is_file(), module
    for entry in SLOW_TESTS:
        module, name = entry.split("::")
        assert f"def {name}(" in (TESTS / module).read_text(), entry
