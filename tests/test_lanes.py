"""Each test file says its lane: a test that starts the exporter or a server is slow.

The slow lane (``pytestmark = pytest.mark.slow`` in a module, or ``@pytest.mark.slow`` on
a test) holds the tests that start a process (the exporter, Prometheus, a browser, pip)
or take more than about a second; ``pytest -m "not slow"`` leaves them out. A quick
``promtool check metrics`` may stay in the fast lane.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
# Calls that start a long-lived process or a binary found by name; ``run`` when it is
# tests.helpers' (the command line).
STARTS_A_PROCESS = {"Popen", "binary", "run_demo"}


def _is_slow_mark(node: ast.expr) -> bool:
    return ast.unparse(node) == "pytest.mark.slow"


def _called(node: ast.FunctionDef) -> set[str]:
    """Names of the functions ``node`` calls (``x.Popen(...)`` counts as ``Popen``)."""
    names = set()
    for call in (c for stmt in node.body for c in ast.walk(stmt) if isinstance(c, ast.Call)):
        func = call.func
        if isinstance(func, ast.Name):
            names.add(func.id)
        elif isinstance(func, ast.Attribute) and func.attr == "Popen":
            names.add(func.attr)
    return names


def fast_tests_starting_a_process(source: str) -> list[str]:
    """The tests of a module outside the slow lane that start a process, directly or
    through a function of the same module."""
    tree = ast.parse(source)
    starting = set(STARTS_A_PROCESS)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "tests.helpers":
            starting |= {a.name for a in node.names if a.name == "run"}
        if (
            isinstance(node, ast.Assign)
            and _is_slow_mark(node.value)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        ):
            return []
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    starts = {name for name, f in functions.items() if _called(f) & starting}
    while True:  # functions of this module that call one that starts a process
        more = {name for name, f in functions.items() if _called(f) & starts} - starts
        if not more:
            break
        starts |= more
    return [
        name
        for name, f in functions.items()
        if name.startswith("test_")
        and name in starts
        and not any(_is_slow_mark(d) for d in f.decorator_list)
    ]


@pytest.mark.parametrize("module", sorted(p.name for p in TESTS.glob("test_*.py")))
def test_a_test_that_starts_a_process_is_in_the_slow_lane(module: str) -> None:
    assert fast_tests_starting_a_process((TESTS / module).read_text()) == []


def test_the_check_sees_a_process_and_a_mark() -> None:
    fast = "import subprocess\ndef test_a():\n    subprocess.Popen(['true'])\n"
    assert fast_tests_starting_a_process(fast) == ["test_a"]
    marked = "import pytest\n@pytest.mark.slow\n" + fast.split("\n", 1)[1]
    assert fast_tests_starting_a_process(marked) == []
    module = "import pytest\npytestmark = pytest.mark.slow\n" + fast
    assert fast_tests_starting_a_process(module) == []
    indirect = "from tests.helpers import run\ndef start():\n    run('x')\n"
    indirect += "def test_b():\n    start()\n"
    assert fast_tests_starting_a_process(indirect) == ["test_b"]
