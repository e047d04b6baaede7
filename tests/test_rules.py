"""The alerting and recording rules: promtool checks, unit tests and conventions."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ops_helpers import (
    DASHBOARDS_DIR,
    REPO,
    RULE_TESTS_DIR,
    RULES_FILE,
    alerting_rule,
    alerting_rules,
    binary,
    load_yaml,
    rule_groups,
    run,
)

pytestmark = pytest.mark.slow

RENDER = REPO / "mixin" / "render.py"
SELECTOR_TESTS = RULE_TESTS_DIR / "selector" / "job-rc.test.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
ALERTS_DOC = REPO / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/example/rackconnect-exporter/blob/main/docs/runbook.md#"
GRAFANA_BASE = "http://localhost:3000/d/"
SEVERITIES = {"critical", "warning", "info"}
# Per-server metrics: an alert built on one of them must name the server.
PER_SERVER = re.compile(
    r"rackconnect_(automation_status|managed_operations_status|server_created_timestamp_seconds"
    r"|server_ready|automation_feature_enabled|automation_unprocessable_info"
    r"|v3_public_ip_status|v3_pool_node_status)\b"
)
ALERTS = [rule["alert"] for rule in alerting_rules()]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def unit_tests() -> list[dict[str, Any]]:
    """Every promtool test group under tests/rules/."""
    return [t for path in sorted(RULE_TESTS_DIR.glob("*.yml")) for t in load_yaml(path)["tests"]]


def test_promtool_check_rules() -> None:
    """The rules file is valid and lint-clean for promtool."""
    result = run([binary("promtool"), "check", "rules", "--lint=all", str(RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in rule_groups())
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    """Every promtool unit test passes."""
    files = sorted(str(p) for p in RULE_TESTS_DIR.glob("*.test.yml"))
    assert files, "no promtool test files in tests/rules/"
    result = run([binary("promtool"), "test", "rules", *files], cwd=RULE_TESTS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def test_the_issue_alerts_exist() -> None:
    """The alerts the operations docs promise are all defined."""
    assert set(ALERTS) >= {
        "RackConnectAutomationFailed",
        "RackConnectAutomationUnprocessable",
        "RackConnectAutomationStuck",
        "RackConnectManagedOperationsFailed",
        "RackConnectManagedOperationsStuck",
        "RackConnectExporterDown",
        "RackConnectPollFailing",
        "RackConnectDataStale",
        "RackConnectServerNotReady",
        "RackConnectServerError",
        "RackConnectConfigReloadFailed",
    }
    assert len(ALERTS) == len(set(ALERTS)), "duplicate alert names"


@pytest.mark.parametrize("name", ALERTS)
def test_alert_follows_mixin_conventions(name: str) -> None:
    """Name, severity and the four annotations follow monitoring-mixin conventions."""
    alert = alerting_rule(name)
    assert re.fullmatch(r"RackConnect(?:V3)?(?:[A-Z][a-z]+|IP)+", name)
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert "{{" not in annotations["summary"], "summary must be a static sentence"
    assert annotations["summary"].endswith(".")
    assert "{{ $labels." in annotations["description"]
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()


@pytest.mark.parametrize("name", ALERTS)
def test_runbook_has_a_section_for_alert(name: str) -> None:
    """The runbook_url anchor exists in docs/runbook.md and the section covers the basics."""
    text = RUNBOOK.read_text(encoding="utf-8")
    sections = {
        github_anchor(m.group(1)): m.group(2)
        for m in re.finditer(r"^## ([^\n]+)\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    }
    anchor = alerting_rule(name)["annotations"]["runbook_url"].rpartition("#")[2]
    assert anchor in sections, f"docs/runbook.md has no section #{anchor}"
    for part in ("**Meaning.**", "**Impact.**", "**What to do.**"):
        assert part in sections[anchor], f"runbook section {name} lacks {part}"


@pytest.mark.parametrize("name", ALERTS)
def test_dashboard_url_points_at_a_dashboard(name: str) -> None:
    """dashboard_url names the uid of a dashboard in grafana/dashboards/."""
    uids = {json.loads(p.read_text())["uid"] for p in DASHBOARDS_DIR.glob("*.json")}
    url = alerting_rule(name)["annotations"]["dashboard_url"]
    assert url.startswith(GRAFANA_BASE)
    uid = url.removeprefix(GRAFANA_BASE).split("?")[0]
    assert uid in uids, f"{name}: no dashboard with uid {uid!r}"


@pytest.mark.parametrize("name", ALERTS)
def test_per_server_alert_names_the_server(name: str) -> None:
    """Alerts on per-server series join the server name and describe the server."""
    alert = alerting_rule(name)
    if not PER_SERVER.search(alert["expr"]):
        return
    assert re.search(
        r"\* on \(account, region, server_id\) group_left \(name\)\s+"
        r"server:rackconnect_server_info:in_trouble\{[^}]*\}\s*$",
        alert["expr"],
    ), "the expression must end with the join on the recorded rackconnect_server_info"
    for label in ("name", "server_id", "account", "region"):
        assert f"$labels.{label}" in alert["annotations"]["description"]


@pytest.mark.parametrize("name", ALERTS)
def test_alert_is_unit_tested(name: str) -> None:
    """Each alert has a case where it fires, one where it is silent, and is in the healthy run."""
    cases = [case for t in unit_tests() for case in t.get("alert_rule_test", [])]
    mine = [case for case in cases if case["alertname"] == name]
    assert any(case["exp_alerts"] for case in mine), f"{name} never fires in the tests"
    assert any(not case["exp_alerts"] for case in mine), f"{name} is never silent in the tests"
    healthy = next(t for t in unit_tests() if t["name"] == "healthy fleet")
    assert name in {case["alertname"] for case in healthy["alert_rule_test"]}
    firing = [a for case in mine for a in case["exp_alerts"]]
    assert all(a.get("exp_annotations") for a in firing), "firing cases must pin annotations"


def test_recording_rules_are_unit_tested() -> None:
    """Each recording rule is checked by a promql_expr_test."""
    records = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    tested = {case["expr"] for t in unit_tests() for case in t.get("promql_expr_test", [])}
    assert records, "no recording rules"
    assert records <= tested, f"untested recording rules: {records - tested}"


def test_alerts_doc_lists_every_alert_with_its_severity() -> None:
    """docs/alerts.md has one table row per alert, with the rule's severity."""
    rows = dict(re.findall(r"^\| `(RackConnect\w+)` \| (\w+) \|", ALERTS_DOC.read_text(), re.M))
    assert rows == {name: alerting_rule(name)["labels"]["severity"] for name in ALERTS}


def test_recording_rules_are_tested_with_an_ha_pair() -> None:
    """Each recording rule gives in the HA-pair group what it gives for one exporter."""
    groups = {t["name"]: t for t in unit_tests()}
    single, pair = groups["recording rules"], groups["recording rules (HA pair)"]
    assert len({s["series"].split("instance=")[1] for s in pair["input_series"]}) > 1
    records = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    assert {c["expr"] for c in pair["promql_expr_test"]} == records
    assert pair["promql_expr_test"] == single["promql_expr_test"]


def test_rules_file_is_the_mixin_render() -> None:
    """The shipped rules, PrometheusRule and dashboards equal the mixin's default render."""
    result = run([sys.executable, str(RENDER), "--check"])
    assert result.returncode == 0, result.stdout + result.stderr


def selectors(expr: str) -> list[str]:
    """The label matchers of every series selector in a PromQL expression."""
    return re.findall(r"\b[a-z0-9_:]+\{([^}]*)\}", expr)


def test_every_selector_uses_the_configured_selector() -> None:
    """Each series selector of every rule starts with the default rackconnectSelector."""
    for group in rule_groups():
        for rule in group["rules"]:
            found = selectors(rule["expr"])
            # Metric names outside a selector; recorded names (with colons) do not count.
            metrics = re.findall(r"(?<![\w:])(?:rackconnect_\w+|up)\b(?![{(:])", rule["expr"])
            # A rule without a selector may only combine records of its own group.
            assert found or re.fullmatch(r"[\w:]+:[\w:]+ - [\w:]+:[\w:]+", rule["expr"]), rule
            assert all(m.startswith('job="rackconnect-exporter"') for m in found), rule["expr"]
            assert not [m for m in metrics if not m.startswith("rackconnect_status")], rule["expr"]


@pytest.fixture(scope="module")
def rendered_job_rc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mixin rendered with rackconnectSelector job="rc", next to its promtool tests."""
    out = tmp_path_factory.mktemp("job-rc")
    config = json.dumps({"rackconnectSelector": 'job="rc"'})
    result = run([sys.executable, str(RENDER), "--config", config, "--output-dir", str(out)])
    assert result.returncode == 0, result.stdout + result.stderr
    rules = out / "rackconnect-alerts-job-rc.yml"
    shutil.copy(out / "deploy" / "prometheus" / "rackconnect-alerts.yml", rules)
    shutil.copy(SELECTOR_TESTS, out)
    return rules


def test_custom_selector_replaces_the_default_everywhere(rendered_job_rc: Path) -> None:
    """With job="rc" the default job appears nowhere, and promtool accepts the rules."""
    assert 'job="rackconnect-exporter"' not in rendered_job_rc.read_text(encoding="utf-8")
    groups = load_yaml(rendered_job_rc)["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        assert all(m.startswith('job="rc"') for m in selectors(rule["expr"])), rule["expr"]
    result = run([binary("promtool"), "check", "rules", "--lint=all", str(rendered_job_rc)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_custom_selector_promtool_tests(rendered_job_rc: Path) -> None:
    """A healthy fleet scraped as job rc raises nothing; that exporter down under job rc fires."""
    test_file = rendered_job_rc.parent / SELECTOR_TESTS.name
    result = run([binary("promtool"), "test", "rules", str(test_file)], cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    healthy = load_yaml(SELECTOR_TESTS)["tests"][0]
    assert {c["alertname"] for c in healthy["alert_rule_test"]} == set(ALERTS)
    assert all(not c["exp_alerts"] for c in healthy["alert_rule_test"])


def test_keep_firing_for_is_supported_by_this_prometheus() -> None:
    """keep_firing_for needs Prometheus 2.42 or later (Debian bookworm ships 2.42)."""
    result = run([binary("promtool"), "--version"])
    version = re.search(r"version (\d+)\.(\d+)", result.stdout + result.stderr)
    assert version, result.stdout + result.stderr
    assert (int(version[1]), int(version[2])) >= (2, 42)
    assert any("keep_firing_for" in rule for rule in alerting_rules())
