"""End to end: simulator -> exporter -> Prometheus (rules) -> Alertmanager -> webhook.

To keep the run short, Prometheus loads a copy of the real rules file in which only
RackConnectAutomationFailed's ``for`` (5m -> 1s) and ``keep_firing_for`` (10m -> none) are
shortened; everything else, labels and annotations included, is the real file. The real
``for`` and ``keep_firing_for`` are proven by the promtool unit tests (tests/rules/, run by
tests/test_rules.py).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from exporter.simulator.core import Simulator
from exporter.simulator.scenario import Scenario
from tests.ops_helpers import (
    ARTIFACTS,
    EXPORTER_JOB,
    RULES_FILE,
    alerting_rule,
    http_json,
    run_alertmanager,
    run_demo,
    run_prometheus,
    scrape_config,
    wait_until,
)

pytestmark = pytest.mark.slow

ALERT = "RackConnectAutomationFailed"
SHORT_FOR = "1s"
# Generous bounds: each is a few seconds when all is well.
FIRE_TIMEOUT = 60
RESOLVE_TIMEOUT = 60


class Webhook:
    """An Alertmanager webhook receiver on 127.0.0.1 that queues every notification."""

    def __init__(self) -> None:
        self.notifications: queue.Queue[dict[str, Any]] = queue.Queue()
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, server_id: str, status: str, timeout: float) -> dict[str, Any]:
        """The first notification about ``server_id``'s ALERT whose alert has ``status``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                payload = self.notifications.get(timeout=left)
            except queue.Empty:
                break
            for alert in payload["alerts"]:
                labels = alert["labels"]
                if (labels["alertname"], labels.get("server_id"), alert["status"]) == (
                    ALERT,
                    server_id,
                    status,
                ):
                    return payload | {"alerts": [alert]}
        pytest.fail(f"no {status} {ALERT} notification for {server_id} within {timeout}s")


def shortened_rules(path: Path) -> Path:
    """Write the real rules with ALERT's ``for`` and ``keep_firing_for`` shortened."""
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    (rule,) = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == ALERT]
    assert rule["for"] == "5m", "the docstring and promtool tests assume the real for: 5m"
    assert rule.pop("keep_firing_for") == "10m", "the docstring assumes keep_firing_for: 10m"
    rule["for"] = SHORT_FOR
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A running webhook receiver."""
    with Webhook() as hook:
        yield hook


def test_failed_automation_reaches_the_webhook_and_resolves(
    tmp_path: Path, webhook: Webhook
) -> None:
    """FAILED -> firing notification with the server's name; DEPLOYED -> resolved notification."""
    started = time.monotonic()
    real = alerting_rule(ALERT)
    am_config = {
        "global": {"resolve_timeout": "1m"},
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "account", "region", "server_id"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "webhook", "webhook_configs": [{"url": webhook.url, "send_resolved": True}]}
        ],
    }
    with (
        run_demo(tmp_path) as demo,
        run_alertmanager(tmp_path, am_config) as alertmanager,
    ):
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(shortened_rules(tmp_path / "rules.yml"))],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [urlsplit(alertmanager).netloc]}]}
                ]
            },
            "scrape_configs": [scrape_config(demo.exporter, "1s")],
        }
        with run_prometheus(tmp_path, prom_config) as prom:
            # Service discovery hands targets over in batches every 5s: wait for both.
            wait_until(
                lambda: http_json(f"{prom.url}/api/v1/alertmanagers")["data"][
                    "activeAlertmanagers"
                ],
                30,
                "Prometheus to discover Alertmanager",
            )
            wait_until(
                lambda: prom.query(f'up{{job="{EXPORTER_JOB}"}} == 1'), 30, "the first scrape"
            )
            server = demo.server_with("globex", "rackconnect_automation_status", {"deployed"})
            ready = time.monotonic()

            demo.set_metadata(server["id"], {"rackconnect_automation_status": "FAILED"})
            firing = webhook.wait_for(server["id"], "firing", FIRE_TIMEOUT)
            fired = time.monotonic()

            demo.set_metadata(server["id"], {"rackconnect_automation_status": "DEPLOYED"})
            resolved = webhook.wait_for(server["id"], "resolved", RESOLVE_TIMEOUT)
            done = time.monotonic()

    timing = {
        "start_stack_s": round(ready - started, 2),
        "failed_to_firing_notification_s": round(fired - ready, 2),
        "deployed_to_resolved_notification_s": round(done - fired, 2),
        "total_s": round(done - started, 2),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "stack-timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(f"stack test timing: {timing}")

    assert firing["receiver"] == "webhook"
    assert firing["status"] == "firing"
    (alert,) = firing["alerts"]
    assert alert["labels"] == {
        "alertname": ALERT,
        "severity": "critical",
        "job": EXPORTER_JOB,  # no instance: the replicas of an HA pair raise it once
        "account": "globex",
        "region": server["region"],
        "server_id": server["id"],
        "name": server["name"],
        "status": "FAILED",
    }
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert annotations["summary"] == real["annotations"]["summary"]
    assert annotations["description"] == (
        f"RackConnect automation on server {server['name']} ({server['id']}) in account globex, "
        f"region {server['region']}, reports FAILED: the server is not connected to the "
        "dedicated network."
    )
    assert annotations["runbook_url"] == real["annotations"]["runbook_url"]
    assert annotations["dashboard_url"] == (
        f"http://localhost:3000/d/rackconnect-fleet?var-account=globex&var-region={server['region']}"
    )

    assert resolved["status"] == "resolved"
    (gone,) = resolved["alerts"]
    assert gone["labels"] == alert["labels"]
    assert gone["endsAt"] > gone["startsAt"]
    assert timing["total_s"] < 60, timing


def test_churn_never_deletes_a_server_forced_through_the_control_api() -> None:
    """A state forced for a demo stays until its alert fires: churn deletes other servers only."""
    sim = Simulator(Scenario.demo(seed=1))
    key = "rackconnect_automation_status"
    deployed = [s["id"] for s in sim.servers() if s["metadata"].get(key) == "DEPLOYED"]
    forced, others = deployed[:4], deployed[4:]
    for server_id in forced:
        sim.set_metadata(server_id, {key: "FAILED"})
    for _ in range(300):
        sim.step()
    live = {s["id"]: s for s in sim.servers()}
    assert [live[i]["metadata"][key] for i in forced if i in live] == ["FAILED"] * len(forced)
    assert any(i not in live for i in others), "churn deleted nothing: the test proves nothing"
