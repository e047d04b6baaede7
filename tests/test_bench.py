"""A small run of the scale benchmark, as the README gives the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent


def test_the_benchmark_runs_and_prints_the_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--servers", "300", "--budget", "0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
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
