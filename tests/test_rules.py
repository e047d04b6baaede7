"""The alerting and recording rules: promtool checks, unit tests and conventions."""

from __future__ import annotations

import json
import re
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

RUNBOOK = REPO / "docs" / "runbook.md"
ALERTS_DOC = REPO / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/example/rackconnect-exporter/blob/main/docs/runbook.md#"
GRAFANA_BASE = "http://localhost:3000/d/"
SEVERITIES = {"critical", "warning", "info"}
# Per-server metrics: an alert built on one of them must name the server.
PER_SERVER = re.compile(
    r"rackconnect_(automation_status|managed_operations_status|server_created_timestamp_seconds"
    r"|server_ready|automation_feature_enabled|automation_unprocessable_info)\b"
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
    }
    assert len(ALERTS) == len(set(ALERTS)), "duplicate alert names"


@pytest.mark.parametrize("name", ALERTS)
def test_alert_follows_mixin_conventions(name: str) -> None:
    """Name, severity and the four annotations follow monitoring-mixin conventions."""
    alert = alerting_rule(name)
    assert re.fullmatch(r"RackConnect(?:[A-Z][a-z]+)+", name)
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
        r"max by \(account, region, server_id, name\) \(rackconnect_server_info\)\s*$",
        alert["expr"],
    ), "the expression must end with the rackconnect_server_info join"
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
