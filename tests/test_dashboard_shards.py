"""The exporter health dashboard's shard panels, evaluated by promtool on made-up series."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ops_helpers import binary, run
from tests.test_dashboards import dashboards


@pytest.mark.slow
def test_the_shard_panels_show_every_shard_and_count_the_missing(tmp_path: Path) -> None:
    """promtool evaluates the panels' queries: shard 1 of 3 down, shard 2 never started,
    one unsharded instance (shard 0 of 1, its own job)."""
    health = {p["title"]: p for p in dashboards()["rackconnect-exporter-health.json"]["panels"]}
    (missing,) = (t["expr"] for t in health["Shards missing"]["targets"])
    ordinal, total, _up = (t["expr"] for t in health["Shards"]["targets"])
    job = 'job="rackconnect-exporter"'
    series = [
        {"series": f'up{{{job}, instance="s0"}}', "values": "1x10"},
        {"series": f'up{{{job}, instance="s1"}}', "values": "1 1 0x8"},
        {"series": f'rackconnect_exporter_shard_ordinal{{{job}, instance="s0", shard_ordinal="0"}}',
         "values": "0x10"},
        {"series": f'rackconnect_exporter_shard_ordinal{{{job}, instance="s1", shard_ordinal="1"}}',
         "values": "1 1"},
        {"series": f'rackconnect_exporter_total_shards{{{job}, instance="s0"}}', "values": "3x10"},
        {"series": f'rackconnect_exporter_total_shards{{{job}, instance="s1"}}', "values": "3 3"},
    ]  # fmt: skip
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": missing, "eval_time": "9m", "exp_samples": [{"value": 2}]},
                    {
                        "expr": ordinal,
                        "eval_time": "9m",
                        "exp_samples": [
                            {"labels": '{instance="s0", shard_ordinal="0"}', "value": 0},
                            {"labels": '{instance="s1", shard_ordinal="1"}', "value": 1},
                        ],
                    },
                    {
                        "expr": total,
                        "eval_time": "9m",
                        "exp_samples": [
                            {"labels": '{instance="s0"}', "value": 3},
                            {"labels": '{instance="s1"}', "value": 3},
                        ],
                    },
                ],
            },
            {
                "interval": "1m",
                "input_series": [{"series": f'up{{{job}, instance="one"}}', "values": "1x3"}],
                "promql_expr_test": [
                    {"expr": missing, "eval_time": "2m", "exp_samples": [{"value": 0}]},
                    {
                        "expr": ordinal,
                        "eval_time": "2m",
                        "exp_samples": [
                            {"labels": '{instance="one", shard_ordinal="0"}', "value": 1}
                        ],
                    },
                    {
                        "expr": total,
                        "eval_time": "2m",
                        "exp_samples": [{"labels": '{instance="one"}', "value": 1}],
                    },
                ],
            },
        ],
    }
    path = tmp_path / "shards.test.yml"
    path.write_text(json.dumps(tests))
    result = run([binary("promtool"), "test", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
