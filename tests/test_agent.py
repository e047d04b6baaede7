"""``agent``: the in-server API and the completion file, exposed for the local server."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from exporter.agent.budget import RequestBudget
from exporter.agent.inserver import (
    parse_features,
    parse_gateway,
    parse_status,
    parse_tasks,
    region_from_url,
)
from exporter.agent.managedops import default_completion_file
from exporter.agent.runtime import Agent
from exporter.exposition.families import AGENT_FAMILIES
from exporter.simulator import Fault
from exporter.simulator.scenario import rc_metadata
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer
from tests.expo_helpers import promtool_check, samples, series, value
from tests.helpers import CLEAN_ENV, STOP_POLL, free_port, wait_for

# A trickle slower than the whole-request deadline, faster than any one read's timeout.
POLL_TIMEOUT = 0.6
TRICKLE = Fault("trickle", api="rackconnect", rate=4.0)  # a byte every quarter second


def within(limit: float, call: Callable[[], object]) -> float:
    """Run ``call`` and fail unless it returns within ``limit`` seconds; the time it took."""
    started = time.monotonic()
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still running after {limit}s"
    return time.monotonic() - started


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator:
    """Factory: ``make_agent(sim, server_id, **options)`` -> (Agent, base URL)."""
    started: list[tuple[Agent, ExporterHTTPServer]] = []

    def make(sim, server_id: str, **options: object) -> tuple[Agent, str]:
        options.setdefault("completion_file", str(tmp_path / "rs_managed_complete"))
        options.setdefault("timeout", 5.0)
        store = Store(60.0, server_families=AGENT_FAMILIES)
        agent = Agent(
            store,
            base_url=sim.rackconnect_url(server_id),
            region="ORD",
            server_id=server_id,
            server_name="web-01",
            **options,  # type: ignore[arg-type]
        )
        httpd = ExporterHTTPServer(("127.0.0.1", 0), store)
        httpd.start(STOP_POLL)
        started.append((agent, httpd))
        return agent, httpd.url

    yield make
    for agent, httpd in started:
        httpd.shutdown()
        httpd.server_close()
        agent.close()


def scrape(url: str, openmetrics: bool = False) -> dict:
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"
    response = requests.get(url + "/metrics", headers={"Accept": accept}, timeout=5)
    assert response.status_code == 200
    return samples(response.content, openmetrics)


def rc_requests(sim, server_id: str) -> list[tuple]:
    return [e for e in sim.request_log if e[1].startswith(f"/rackconnect/{server_id}/")]


def deployed_server(sim) -> str:
    return sim.add_server("acme", "ORD", "web-01", rc_metadata("DEPLOYED", managed="Complete"))


@pytest.mark.parametrize("variant", ["a", "b"])
def test_every_variant_gives_the_same_metrics(sim, make_agent, variant) -> None:
    sim.rackconnect_variant = variant
    sid = deployed_server(sim)
    agent, url = make_agent(sim, sid)
    agent.poll()
    parsed = scrape(url)
    base = {"account": "local", "region": "ORD", "server_id": sid}
    assert value(parsed, "rackconnect_up", account="local", region="ORD") == 1
    info = series(parsed, "rackconnect_server_info")
    assert info == [{**base, "name": "web-01", "generation": "next"}]
    assert value(parsed, "rackconnect_automation_status", **base, status="DEPLOYED") == 1
    assert value(parsed, "rackconnect_automation_status", **base, status="DEPLOYING") == 0
    assert {lbl["feature"] for lbl in series(parsed, "rackconnect_automation_feature_enabled")} == {
        "configure_network_stack",
        "manage_software_firewall",
        "provision_public_ip",
    }
    assert all(
        v == 1
        for (name, _), v in parsed.items()
        if name == "rackconnect_automation_feature_enabled"
    )
    gateway = sim.servers("acme", "ORD")
    ip = next(s["gateway_ip"] for s in gateway if s["id"] == sid)
    assert value(parsed, "rackconnect_gateway_info", **base, gateway_ip=ip) == 1
    tasks = {
        (lbl["task"], lbl["status"])
        for lbl in series(parsed, "rackconnect_automation_task_status", **base)
    }
    assert tasks == {
        ("configure_network_stack", "COMPLETED"),
        ("manage_software_firewall", "COMPLETED"),
        ("provision_public_ip", "COMPLETED"),
    }
    # Not managed: ready needs only RackConnect.
    assert value(parsed, "rackconnect_server_ready", **base) == 1
    assert value(parsed, "rackconnect_api_requests_total", api="rackconnect", code="200") == 3
    assert len(rc_requests(sim, sid)) == 3
    assert all("format=json" in e[1] for e in rc_requests(sim, sid))
    assert value(parsed, "rackconnect_account_info", account="local", rackconnect="true") == 1


def test_exposition_passes_promtool_in_both_formats(sim, make_agent) -> None:
    sid = deployed_server(sim)
    agent, url = make_agent(sim, sid)
    agent.poll()
    promtool_check(requests.get(url + "/metrics", timeout=5).content)
    om = scrape(url, openmetrics=True)
    assert value(om, "rackconnect_gateway_info", server_id=sid) == 1


def test_deploying_server_has_no_gateway_yet(sim, make_agent) -> None:
    sid = sim.add_server("acme", "ORD", "web-01", rc_metadata("DEPLOYING"))
    agent, url = make_agent(sim, sid)
    agent.poll()
    parsed = scrape(url)
    assert value(parsed, "rackconnect_up", region="ORD") == 1
    assert value(parsed, "rackconnect_automation_status", status="DEPLOYING") == 1
    assert series(parsed, "rackconnect_gateway_info") == []
    assert value(parsed, "rackconnect_api_requests_total", api="rackconnect", code="404") == 1
    assert value(parsed, "rackconnect_server_ready", server_id=sid) == 0
    assert ("configure_network_stack", "COMPLETED") in {
        (lbl["task"], lbl["status"]) for lbl in series(parsed, "rackconnect_automation_task_status")
    }
    sim.set_metadata(sid, rc_metadata("DEPLOYED"))
    agent.poll()
    parsed = scrape(url)
    assert len(series(parsed, "rackconnect_gateway_info", server_id=sid)) == 1
    assert value(parsed, "rackconnect_server_ready", server_id=sid) == 1


def test_completion_file_decides_managed(sim, make_agent, tmp_path) -> None:
    sid = deployed_server(sim)
    done = tmp_path / "rs_managed_cloud_automation_complete"
    agent, url = make_agent(sim, sid, managed=True, completion_file=str(done))
    agent.poll()
    parsed = scrape(url)
    assert series(parsed, "rackconnect_managed_operations_status") == []
    assert value(parsed, "rackconnect_server_ready", server_id=sid) == 0
    assert value(parsed, "rackconnect_account_info", account="local", managed="true") == 1
    done.touch()
    agent.poll()
    parsed = scrape(url)
    assert value(parsed, "rackconnect_managed_operations_status", status="Complete") == 1
    assert value(parsed, "rackconnect_managed_operations_status", status="Pending") == 0
    assert value(parsed, "rackconnect_server_ready", server_id=sid) == 1


def test_a_trickling_in_server_api_fails_the_poll_with_timeout(sim, make_agent) -> None:
    sid = deployed_server(sim)
    agent, url = make_agent(sim, sid, timeout=POLL_TIMEOUT)
    sim.add_fault(TRICKLE)
    took = within(POLL_TIMEOUT + 1.0, agent.poll)
    print(f"\ntrickling in-server API: the agent's poll ended after {took:.2f}s")
    parsed = scrape(url)
    assert value(parsed, "rackconnect_up", region="ORD") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="ORD", reason="timeout") == 1


def test_a_failed_request_is_not_retried_within_the_poll(sim, make_agent) -> None:
    sid = deployed_server(sim)
    agent, url = make_agent(sim, sid)
    sim.add_fault(Fault("status", api="rackconnect", status=503))
    agent.poll()
    assert [e[2] for e in rc_requests(sim, sid)] == [503]  # each request counts: one attempt
    parsed = scrape(url)
    assert value(parsed, "rackconnect_poll_errors_total", region="ORD", reason="http_error") == 1


def test_403_is_rate_limited_and_backs_off(sim, make_agent) -> None:
    sid = deployed_server(sim)
    clock = FakeClock()
    clock.now = time.time()
    sim.clock = clock  # no minute boundary can pass during the test
    agent, url = make_agent(sim, sid, budget=RequestBudget(clock=clock))
    agent.poll()
    # Someone else on the server spends the rest of this minute's quota.
    for _ in range(27):
        requests.get(sim.rackconnect_url(sid) + "/v1/automation_status", timeout=5)
    before = len(rc_requests(sim, sid))
    agent.poll()
    parsed = scrape(url)
    assert rc_requests(sim, sid)[-1][2] == 403
    assert len(rc_requests(sim, sid)) == before + 1  # stopped at the first 403
    assert value(parsed, "rackconnect_up", region="ORD") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="ORD", reason="rate_limited") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="rackconnect", code="403") == 1
    # The last good state stays exposed.
    assert value(parsed, "rackconnect_automation_status", status="DEPLOYED") == 1
    assert len(series(parsed, "rackconnect_gateway_info")) == 1
    # Nothing more is sent for a whole minute.
    assert agent.next_delay(1.0) == pytest.approx(60.0)
    agent.poll()
    assert len(rc_requests(sim, sid)) == before + 1


@pytest.mark.slow
def test_never_more_than_30_requests_a_minute(sim, make_agent) -> None:
    sid = deployed_server(sim)
    clock = FakeClock()
    clock.now = time.time()
    sim.clock = clock  # the simulated API counts its per-minute limit on the same clock
    agent, url = make_agent(sim, sid, budget=RequestBudget(clock=clock))
    delays = []
    for _ in range(15):
        agent.poll()
        delays.append(agent.next_delay(0.1))
        clock.now += 1  # a --poll.interval far too short for the limit
    assert len(rc_requests(sim, sid)) == 30
    assert all(e[2] == 200 for e in rc_requests(sim, sid))
    assert delays[0] == 0.1
    assert delays[-1] > 40  # the agent would sleep until the window frees up
    parsed = scrape(url)
    assert value(parsed, "rackconnect_poll_errors_total", reason="rate_limited") == 5
    clock.now += 60
    agent.poll()
    assert len(rc_requests(sim, sid)) == 33


def test_budget_window() -> None:
    clock = FakeClock()
    budget = RequestBudget(limit=3, window=60, clock=clock)
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    assert budget.wait_for(1) == 60
    clock.now += 30
    assert budget.wait_for(3) == 30
    clock.now += 30
    assert budget.take()
    budget.block()
    assert not budget.take()
    assert budget.wait_for(1) == 60


def test_wrong_shapes_are_a_bad_response(sim, make_agent) -> None:
    sid = deployed_server(sim)
    agent, url = make_agent(sim, sid)
    sim.add_fault(Fault(kind="wrong_types", api="rackconnect"))
    agent.poll()
    parsed = scrape(url)
    assert value(parsed, "rackconnect_up", region="ORD") == 0
    assert value(parsed, "rackconnect_poll_errors_total", reason="bad_response") == 1


def test_server_id_falls_back_to_the_host_name(sim, make_agent) -> None:
    sid = deployed_server(sim)
    store_agent, url = make_agent(sim, sid)
    store_agent.server_id = None
    store_agent.poll()
    ids = {lbl["server_id"] for lbl in series(scrape(url), "rackconnect_server_info")}
    assert len(ids) == 1
    assert ids != {""}


@pytest.mark.parametrize(
    ("doc", "status"),
    [
        ({"automation_status": "DEPLOYED"}, "DEPLOYED"),
        ("DEPLOYED", "DEPLOYED"),
        ('"deploying"', "DEPLOYING"),
        ({"status": " failed "}, "FAILED"),
        ({"automation_status": "SOMETHING"}, "UNKNOWN"),
        ({}, None),
        ([1], None),
    ],
)
def test_status_shapes(doc, status) -> None:
    assert parse_status(doc) == status


def test_other_shapes() -> None:
    assert parse_gateway({"gateway_ip": "10.1.2.1"}) == "10.1.2.1"
    assert parse_gateway({"ip": "10.1.2.1"}) == "10.1.2.1"
    assert parse_gateway(" 10.1.2.1 \n") == "10.1.2.1"
    assert parse_gateway({"gateway": "not an ip"}) is None
    assert parse_tasks({"tasks": [{"name": "a", "status": "DONE"}]}) == (("a", "DONE"),)
    assert parse_tasks({"cloud_server_tasks": [{"task": "b", "task_status": "X"}]}) == (("b", "X"),)
    assert parse_tasks({"automation_status": "DEPLOYED"}) == ()
    flat = {
        "rackconnect_automation_feature_provison_public_ip": "ENABLED",
        "manage_software_firewall": "disabled",
        "something_else": "ENABLED",
    }
    assert parse_features(flat) == (
        ("manage_software_firewall", False),
        ("provision_public_ip", True),
    )
    listed = {"automation_features": [{"name": "configure_network_stack", "status": "ENABLED"}]}
    assert parse_features(listed) == (("configure_network_stack", True),)
    assert region_from_url("https://ord.api.rackconnect.rackspace.com") == "ORD"
    assert region_from_url("http://127.0.0.1:1/rackconnect/x") is None
    assert default_completion_file() == "/tmp/rs_managed_cloud_automation_complete"


@pytest.mark.slow
def test_agent_command(sim, tmp_path) -> None:
    sid = deployed_server(sim)
    port = free_port()
    done = tmp_path / "done"
    done.touch()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "agent",
            "--rackconnect.url",
            sim.rackconnect_url(sid),
            "--rackconnect.region",
            "ord",
            "--server.id",
            sid,
            "--managed",
            "true",
            "--managed.completion-file",
            str(done),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--poll.interval",
            "1s",
        ],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/-/ready")
        assert requests.get(base + "/-/healthy", timeout=5).status_code == 200
        assert "RackConnect Exporter" in requests.get(base + "/", timeout=5).text
        parsed = scrape(base)
        assert (
            value(parsed, "rackconnect_server_ready", account="local", region="ORD", server_id=sid)
            == 1
        )
        assert value(parsed, "rackconnect_managed_operations_status", status="Complete") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    missing = subprocess.run(
        [sys.executable, "-m", "exporter", "agent"],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert missing.returncode == 3
    assert "--rackconnect.region" in missing.stderr
