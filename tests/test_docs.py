"""The README's metric tables and the family table say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.exposition.families import FAMILIES, PROCESS_PREFIX

README = Path(__file__).parent.parent / "README.md"
PER_SERVER = ("account", "region", "server_id")


def metrics_section() -> str:
    return README.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]


def metric_rows() -> dict[str, tuple[set[str], bool]]:
    """metric -> (labels named in its row, whether the table lists extra labels only)."""
    section = metrics_section()
    rows: dict[str, tuple[set[str], bool]] = {}
    extra_only = False
    for line in section.splitlines():
        if line.startswith("| metric |"):
            extra_only = "extra labels" in line
        match = re.match(r"\| `([a-z_]+)` \|([^|]*)\|", line)
        if match:
            rows[match.group(1)] = (set(re.findall(r"`([a-z_]+)`", match.group(2))), extra_only)
    return rows


def test_every_family_is_documented_with_its_labels() -> None:
    rows = metric_rows()
    assert set(rows) == {f.name for f in FAMILIES}
    for family in FAMILIES:
        labels, extra_only = rows[family.name]
        expected = set(family.labels) - set(PER_SERVER) if extra_only else set(family.labels)
        assert labels == expected, family.name


def test_the_process_families_have_one_row_of_their_own() -> None:
    """``process_*`` is documented once, and no family of ours uses its prefix."""
    rows = re.findall(r"^\| `([a-z_]+)\*` \|", metrics_section(), re.MULTILINE)
    assert rows == [PROCESS_PREFIX]
    assert not [f.name for f in FAMILIES if f.name.startswith(PROCESS_PREFIX)]
