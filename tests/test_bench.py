"""A small run of the scale benchmark, as the README gives the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent


def bench(module: str, *args: str, timeout: float) -> str:
    """The output of ``python -m MODULE ARGS`` from the repository, which must exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_benchmark_runs_and_prints_the_table() -> None:
    out = bench("bench", "--servers", "300", "--budget", "0.2", timeout=180)
    assert "| | 300 servers |" in out
    for row in (
        "scrape gzip: median / p99",
        "static floor, text: median (ours / floor)",
        "render-on-scrape, openmetrics: median (it / ours)",
        "scrape text during steady full polls",
        "scrape gzip during changing full polls",
        "warm full poll, unchanged fleet: CPU min / median / max",
        "full poll: requests (per region) | 3 (1) |",
        "incremental poll, nothing changed: requests (per region) | 3 (1) |",
        "exporter peak RSS",
    ):
        assert row in out, row
    assert "token-bucket wait | 0; " not in out  # each window overlapped polls
    assert "nan" not in out


def test_the_rule_benchmark_reports_groups_rules_and_dashboard_queries() -> None:
    out = bench("bench.rules", "--servers=300", "--evaluations=2", "--interval=2", timeout=240)
    assert "### 300 servers" in out
    assert "| **rackconnect.alerts** | 2 |" in out
    assert "| **rackconnect.rules** | 2 |" in out
    assert "| server_status:rackconnect_automation_status:not_deployed | 2 |" in out
    # The not-ready table lists the scale fleet's servers in trouble, within tableRows.
    row = next(line for line in out.splitlines() if "Servers not ready A |" in line)
    assert 0 < int(row.split("|")[2]) <= 500, row
    assert "| rackconnect-server: variable server_id | 100 |" in out  # one region of three
