"""Grafana dashboards: generated files current, structure sound, every query returns data.

The live part starts the demo (simulated cloud + exporter) and Debian's Prometheus with the
real rules file (recording rules included), then runs every panel and variable query.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops_helpers import (
    DASHBOARDS_DIR,
    EXPORTER_JOB,
    REPO,
    RULES_FILE,
    Demo,
    Prometheus,
    alerting_rules,
    load_yaml,
    run,
    run_demo,
    run_prometheus,
    scrape_config,
    wait_until,
)

pytestmark = pytest.mark.slow

RENDER = REPO / "mixin" / "render.py"
DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))
# What Grafana would put in place of each variable: "All" is the regex .* for the template
# variables; the interval macros get values that fit a Prometheus scraping every second.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$account": ".*",
    "$region": ".*",
    "$server_id": ".*",
}
# Metrics the dashboards show that this exporter version does not expose yet: a query on
# one of them may return nothing, as long as the demo indeed lacks the metric.
NOT_EXPOSED_YET = {"rackconnect_server_status"}


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in DASHBOARD_FILES}


def substitute(expr: str) -> str:
    """The query as Grafana sends it to Prometheus with the variables above."""
    expr = re.sub(r"\$\{(\w+)\}", r"$\1", expr)
    for name, value in SUBSTITUTIONS.items():
        expr = expr.replace(name, value)
    assert "$" not in expr.replace('"$1"', ""), f"unsubstituted variable in {expr}"
    return expr


def panel_queries() -> list[tuple[str, str, dict[str, Any]]]:
    """(id, query, panel) for every query of every panel."""
    return [
        (f"{name}:{panel['title']}:{target['refId']}", substitute(target["expr"]), panel)
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def variable_queries() -> list[tuple[str, str]]:
    """(id, query) for every query variable; label_values(m, l) becomes count by (l) (m)."""
    queries = []
    for name, board in dashboards().items():
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", var["definition"])
            assert match, f"{name}: unsupported variable query {var['definition']}"
            promql = f"count by ({match[2]}) ({substitute(match[1])})"
            queries.append((f"{name}:${var['name']}", promql))
    return queries


PANEL_QUERIES = panel_queries()
VARIABLE_QUERIES = variable_queries()


# --- static checks ------------------------------------------------------------------------


def test_generated_dashboards_are_current() -> None:
    """The committed JSON is exactly what the mixin renders (mixin/render.py)."""
    result = run([sys.executable, str(RENDER), "--check"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_have_fixed_uids_that_alerts_link_to() -> None:
    """Both dashboards exist with their fixed uids, and alerts link to each of them."""
    uids = {board["uid"] for board in dashboards().values()}
    assert uids == {"rackconnect-fleet", "rackconnect-exporter-health", "rackconnect-server"}
    links = " ".join(r["annotations"]["dashboard_url"] for r in alerting_rules())
    for uid in uids:
        assert f"/d/{uid}" in links


@pytest.mark.parametrize("name", [p.name for p in DASHBOARD_FILES])
def test_dashboard_variables(name: str) -> None:
    """A datasource variable; account and region multi-value with All = .*, except on the
    server dashboard, where one of each keeps the server picker to one region's servers."""
    variables = {v["name"]: v for v in dashboards()[name]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    one = name == "rackconnect-server.json"
    for var in ("account", "region"):
        assert variables[var]["includeAll"] is not one
        assert variables[var]["multi"] is not one
        assert one or variables[var]["allValue"] == ".*"
        assert "rackconnect_server_info" not in variables[var]["definition"], "reads the fleet"
    if one:
        assert 'account=~"$account", region=~"$region"' in variables["server_id"]["definition"]


# Per-server families a fleet-wide panel must not read whole: it reads the alert group's
# records of the servers in trouble instead (or an account/region count).
FLEET_WIDE = re.compile(
    r"(?<![\w:])rackconnect_(server_info|server_ready|server_created_timestamp_seconds"
    r"|automation_status|managed_operations_status|automation_feature_enabled"
    r"|v3_public_ip_status|v3_public_ip_info|v3_pool_node_status)\{"
)


def test_fleet_dashboard_reads_no_whole_fleet_and_bounds_its_lists() -> None:
    """Fleet panels read records, and each list of servers is cut to a top-k."""
    fleet = dashboards()["rackconnect-fleet.json"]
    for panel in fleet["panels"]:
        for target in panel.get("targets", []):
            assert not FLEET_WIDE.search(target["expr"]), f"{panel['title']}: {target['expr']}"
            if "server_id" in target["expr"]:
                assert "topk(500, " in target["expr"], panel["title"]


@pytest.mark.parametrize("name", [p.name for p in DASHBOARD_FILES])
def test_panels_use_the_datasource_variable_and_do_not_overlap(name: str) -> None:
    """Every panel queries ${datasource}, has a unique id, and no two panels overlap."""
    panels = dashboards()[name]["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']} has no query"
        for item in (panel, *panel["targets"]):
            assert item["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_no_query_uses_the_interval_as_a_range() -> None:
    """[$__interval] is empty when the interval equals the scrape interval: never a range."""
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert "[$__interval]" not in target["expr"], f"{name}: {panel['title']}"


def test_queries_select_the_exporter_series() -> None:
    """Raw exporter series carry the mixin's selector: no panel counts other jobs' targets."""
    for name, board in dashboards().items():
        exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
        for expr in exprs:
            for match in re.finditer(r"\b(up|rackconnect_[a-z_]+)\{([^}]*)\}", expr):
                assert match[2].startswith(f'job="{EXPORTER_JOB}"'), f"{name}: {expr}"
        variables = {v["name"] for v in board["templating"]["list"]}
        assert "job" not in variables


def test_server_dashboard_shows_one_server() -> None:
    """A single-valued server_id variable; Nova status, both automations, features, age."""
    server = dashboards()["rackconnect-server.json"]
    variables = {v["name"]: v for v in server["templating"]["list"]}
    assert variables["server_id"]["multi"] is False
    assert variables["server_id"]["includeAll"] is False
    exprs = " ".join(t["expr"] for p in server["panels"] for t in p.get("targets", []))
    for metric in (
        "rackconnect_server_status",
        "rackconnect_automation_status",
        "rackconnect_managed_operations_status",
        "rackconnect_automation_feature_enabled",
        "rackconnect_server_created_timestamp_seconds",
        "rackconnect_server_ready",
        "rackconnect_v3_public_ip_info",
        "rackconnect_v3_pool_node_status",
        "rackconnect_v3_pool_info",
    ):
        assert metric in exprs
    assert all(
        'server_id=~"$server_id"' in t["expr"]
        for p in server["panels"]
        for t in p.get("targets", [])
    )


def test_fleet_dashboard_shows_what_the_issue_asks_for() -> None:
    """Status over time, the not-ready table (name, region, status, age), features, Managed."""
    fleet = dashboards()["rackconnect-fleet.json"]
    panels = {p["title"]: p for p in fleet["panels"]}
    table = panels["Servers not ready"]
    columns = table["transformations"][1]["options"]["renameByName"]
    assert set(columns.values()) >= {"Name", "Region", "RackConnect", "Managed Operations", "Age"}
    for title in (
        "RackConnect automation status",
        "Managed Operations status",
        "Servers by account, region and RackConnect status",
        "Automation transitions",
        "Time to DEPLOYED",
        "Time to Complete",
        "RackConnect automation features",
        "RackConnect v3.0 public IPs by state",
        "RackConnect v3.0 pool memberships by state",
        "RackConnect v3.0 failures",
    ):
        assert title in panels


def test_health_dashboard_shows_what_the_issue_asks_for() -> None:
    """Up, poll age, poll duration, errors by reason, API requests by code."""
    health = dashboards()["rackconnect-exporter-health.json"]
    exprs = " ".join(t["expr"] for p in health["panels"] for t in p.get("targets", []))
    for metric in (
        "up{",
        "rackconnect_up{",
        "rackconnect_last_successful_poll_timestamp_seconds",
        "rackconnect_poll_duration_seconds",
        "rackconnect_poll_errors_total",
        "rackconnect_api_requests_total",
        "rackconnect_exporter_shard_ordinal",
        "rackconnect_exporter_total_shards",
    ):
        assert metric in exprs
    assert "by (instance, version, revision, python_version)" in exprs
    assert "by (account, region, reason)" in exprs
    assert "by (api, code)" in exprs


def test_provisioning_files() -> None:
    """Grafana provisioning: a default Prometheus datasource and a file provider."""
    datasources = load_yaml(REPO / "grafana/provisioning/datasources/prometheus.yml")
    assert datasources["apiVersion"] == 1
    assert [d["type"] for d in datasources["datasources"] if d.get("isDefault")] == ["prometheus"]
    providers = load_yaml(REPO / "grafana/provisioning/dashboards/rackconnect.yml")
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")


# --- live queries -------------------------------------------------------------------------


def make_transitions(demo: Demo, prom: Prometheus) -> None:
    """Move four servers to a final state, so 'Automation transitions' has something."""
    rc, managed = "rackconnect_automation_status", "rax_service_level_automation"
    to_failed = demo.server_with("acme", rc, {"deployed"})
    to_deployed = demo.server_with("acme", rc, {"deploying", "unprocessable"})
    to_error = demo.server_with("acme", managed, {"complete"})
    to_complete = demo.server_with("acme", managed, {"pending", "in progress"})
    changes = [
        (to_failed, {rc: "FAILED"}, "rackconnect_automation_status", "FAILED"),
        (to_deployed, {rc: "DEPLOYED"}, "rackconnect_automation_status", "DEPLOYED"),
        (
            to_error,
            {managed: "Build Error"},
            "rackconnect_managed_operations_status",
            "Build Error",
        ),
        (to_complete, {managed: "Complete"}, "rackconnect_managed_operations_status", "Complete"),
    ]
    for server, metadata, _, _ in changes:
        demo.set_metadata(server["id"], metadata)
    for server, _, metric, status in changes:
        query = f'{metric}{{server_id="{server["id"]}", status="{status}"}} == 1'
        wait_until(lambda q=query: prom.query(q), 20, f"Prometheus to see {query}")
    # The transitions counters appear with the change; a rate needs two samples of them.
    query = "count_over_time(rackconnect_automation_transitions_total[1m]) >= 2"
    wait_until(lambda: prom.query(query), 20, "two scrapes of the transitions")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus with the real rules, scraping the demo every second, after some history."""
    workdir: Path = tmp_path_factory.mktemp("dashboards")
    with run_demo(workdir) as demo:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES_FILE)],
            "scrape_configs": [scrape_config(demo.exporter, "1s")],
        }
        with run_prometheus(workdir, config) as prom:
            # A few scrapes first, so range functions and transitions have history.
            wait_until(
                lambda: prom.query(f'count_over_time(up{{job="{EXPORTER_JOB}"}}[1m]) >= 3'),
                30,
                "three scrapes of the exporter",
            )
            make_transitions(demo, prom)
            wait_until(
                lambda: prom.query("account_region:rackconnect_server_info:count"),
                20,
                "the recording rules",
            )
            yield prom


@pytest.mark.parametrize(
    ("query", "panel"), [q[1:] for q in PANEL_QUERIES], ids=[q[0] for q in PANEL_QUERIES]
)
def test_panel_query_returns_data(
    prometheus: Prometheus, query: str, panel: dict[str, Any]
) -> None:
    """The query parses and returns at least one series; table columns exist as labels."""
    result = prometheus.query(query)
    pending = {m for m in NOT_EXPOSED_YET if m in query}
    if not result and pending:
        assert not prometheus.query(f'count({{__name__=~"{"|".join(pending)}"}})')
        return
    assert result, f"panel {panel['title']!r}: no data for\n{query}"
    if panel["type"] == "table":
        columns = panel["transformations"][1]["options"]["renameByName"]
        labels = {label for series in result for label in series["metric"]}
        expected = {c for c in columns if not c.startswith("Value")}
        # Each query of a merged table brings some of the columns; together they bring all.
        assert labels & expected, f"{panel['title']}: query brings none of {expected}"


@pytest.mark.parametrize(
    "query", [q[1] for q in VARIABLE_QUERIES], ids=[q[0] for q in VARIABLE_QUERIES]
)
def test_variable_query_returns_values(prometheus: Prometheus, query: str) -> None:
    """Each template variable gets values to choose from."""
    assert prometheus.query(query), f"no values for {query}"


def test_table_columns_all_come_from_some_query(prometheus: Prometheus) -> None:
    """Every column a table renames is a label some of its queries returns."""
    for _, board in dashboards().items():
        for panel in board["panels"]:
            if panel["type"] != "table":
                continue
            labels: set[str] = set()
            for target in panel["targets"]:
                for series in prometheus.query(substitute(target["expr"])):
                    labels |= set(series["metric"])
            columns = panel["transformations"][1]["options"]["renameByName"]
            missing = {c for c in columns if not c.startswith("Value")} - labels
            assert not missing, f"{panel['title']}: no query returns {missing}"
