"""RackConnect v3.0 through the whole exporter: polled, exposed, judged ready, kept on failure."""

from __future__ import annotations

import operator
from collections.abc import Iterator

import pytest

from exporter.polling.account import AccountPoller
from exporter.polling.rackconnect_v3 import RegionV3
from exporter.rackspace import rackconnect_v3
from exporter.simulator import Fault, Simulator
from exporter.store import Store
from tests.conftest import account_config
from tests.expo_helpers import promtool_check, series, value
from tests.test_simulator_v3 import Clock, v3_scenario

STATES = ("ADDING", "ACTIVE", "REMOVING", "ADD_FAILED", "REMOVE_FAILED", "UNKNOWN")
IP_STATUS = "rackconnect_v3_public_ip_status"
NODE_STATUS = "rackconnect_v3_pool_node_status"
DETAIL = "rackconnect_v3_status_detail_info"
READY = "rackconnect_server_ready"
V3_ERRORS = "rackconnect_v3_poll_errors_total"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[Simulator]:
    """The v3.0 fleet (account vee: RackConnect v3.0 in DFW, not in ORD) on the test's clock."""
    with Simulator(v3_scenario(), clock=clock) as simulator:
        yield simulator


@pytest.fixture
def exporter(sim: Simulator, clock: Clock, make_exporter):
    return make_exporter(account_config(sim, "vee"), clock=clock)


def one_hot(parsed: dict, name: str, **labels: str) -> str:
    """The one state whose series is 1; every state has a series."""
    found = {s: value(parsed, name, status=s, **labels) for s in STATES}
    assert None not in found.values(), found
    on = [s for s, v in found.items() if v == 1]
    assert len(on) == 1, found
    assert sum(found.values()) == 1
    return on[0]


def new_server(sim: Simulator, name: str = "pipeline-01") -> str:
    return sim.add_server("vee", "DFW", name)


def test_v3_up_and_pools_only_in_v3_regions(sim: Simulator, exporter) -> None:
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_v3_up", account="vee", region="DFW") == 1
    assert value(parsed, "rackconnect_v3_up", region="ORD") is None
    assert {s["region"] for s in series(parsed, V3_ERRORS)} == {"DFW"}
    assert value(parsed, "rackconnect_up", region="ORD") == 1
    pools = series(parsed, "rackconnect_v3_pool_info", account="vee")
    assert {(p["region"], p["name"], p["port"]) for p in pools} == {
        ("DFW", "web-http", "80"),
        ("DFW", "web-https", "443"),
    }
    # The ORD server has no v3.0 series; its readiness is v2.0's rule.
    ord_id = next(s["id"] for s in sim.servers("vee", "ORD"))
    assert not series(parsed, IP_STATUS, server_id=ord_id)
    assert value(parsed, READY, server_id=ord_id) == 1
    requests = series(parsed, "rackconnect_api_requests_total", api="rackconnect_v3")
    assert {r["region"] for r in requests} == {"DFW"}


@pytest.mark.parametrize(
    ("served", "state"),
    [
        ("ADDING", "ADDING"),
        ("ACTIVE", "ACTIVE"),
        (" active ", "ACTIVE"),
        ("REMOVING", "REMOVING"),
        ("add_failed", "ADD_FAILED"),
        ("REMOVE_FAILED", "REMOVE_FAILED"),
        ("BOGUS", "UNKNOWN"),
    ],
)
def test_each_state_is_one_hot(sim: Simulator, exporter, served: str, state: str) -> None:
    server = new_server(sim)
    ip = sim.add_public_ip(server)
    pool = sim.rackconnect_v3("vee", "DFW")["pools"][0]["id"]
    node = sim.add_pool_node(server, pool)
    sim.set_v3_status(ip, served)
    sim.set_v3_status(node, served)
    exporter.poll()
    parsed = exporter.scrape()
    assert one_hot(parsed, IP_STATUS, server_id=server, public_ip_id=ip) == state
    assert one_hot(parsed, NODE_STATUS, server_id=server, pool_id=pool) == state
    assert value(parsed, READY, server_id=server) == int(state == "ACTIVE")


def test_failure_details_appear(sim: Simulator, exporter) -> None:
    server = new_server(sim)
    ip = sim.add_public_ip(server, after=0, outcome="ADD_FAILED", detail='no "free" address')
    pool = sim.rackconnect_v3("vee", "DFW")["pools"][1]["id"]
    sim.add_pool_node(server, pool, after=0, outcome="ADD_FAILED", detail="x" * 300)
    exporter.poll()
    parsed = exporter.scrape()
    details = series(parsed, DETAIL, server_id=server)
    assert {(d["resource"], d["resource_id"], d["detail"]) for d in details} == {
        ("public_ip", ip, 'no "free" address'),
        ("pool_node", pool, "x" * 200),  # the pool's id: it joins with the node's status
    }
    assert value(parsed, IP_STATUS, server_id=server, status="ADD_FAILED") == 1
    assert value(parsed, "rackconnect_v3_public_ip_info", server_id=server) == 1
    assert series(parsed, "rackconnect_v3_public_ip_info", server_id=server)[0]["address"] == ""


def test_an_adding_ip_that_turns_active_is_ready_at_the_next_poll(
    sim: Simulator, exporter, clock: Clock
) -> None:
    server = new_server(sim)
    ip = sim.add_public_ip(server, after=30)
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, READY, server_id=server) == 0
    assert value(parsed, IP_STATUS, server_id=server, status="ADDING") == 1
    clock.now += 31
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, READY, server_id=server) == 1
    info = series(parsed, "rackconnect_v3_public_ip_info", server_id=server, public_ip_id=ip)
    assert info[0]["address"]  # allocated once ACTIVE
    # The history counts the change and times it from the public IP's created.
    transitions = "rackconnect_automation_transitions_total"
    labels = {"automation": "rackconnect_v3_public_ip", "region": "DFW"}
    assert value(parsed, transitions, **labels, **{"from": "ADDING", "to": "ACTIVE"}) == 1
    count = "rackconnect_automation_duration_seconds_count"
    assert value(parsed, count, **labels, outcome="ACTIVE") == 1
    total = value(parsed, "rackconnect_automation_duration_seconds_sum", **labels)
    assert total == pytest.approx(30, abs=1)


def test_failed_resources_and_nova_build_are_not_ready(
    sim: Simulator, exporter, clock: Clock
) -> None:
    pool = sim.rackconnect_v3("vee", "DFW")["pools"][0]["id"]
    ip_failed = new_server(sim, "ip-failed")
    sim.add_public_ip(ip_failed, after=0, outcome="ADD_FAILED")
    node_failed = new_server(sim, "node-failed")
    sim.add_public_ip(node_failed, after=0)
    sim.add_pool_node(node_failed, pool, after=0, outcome="ADD_FAILED")
    remove_failed = new_server(sim, "remove-failed")
    removing = sim.add_public_ip(remove_failed, after=0)
    building = sim.add_server("vee", "DFW", "building", status="BUILD")
    sim.add_public_ip(building, after=0)
    wired = new_server(sim, "wired")
    sim.add_public_ip(wired, after=0)
    sim.add_pool_node(wired, pool, after=0)
    clock.now += 1
    sim.remove_v3(removing, after=0, fail=True)
    clock.now += 1
    exporter.poll()
    parsed = exporter.scrape()
    for server in (ip_failed, node_failed, remove_failed, building):
        assert value(parsed, READY, server_id=server) == 0, server
    assert value(parsed, READY, server_id=wired) == 1
    assert value(parsed, IP_STATUS, server_id=remove_failed, status="REMOVE_FAILED") == 1
    assert value(parsed, NODE_STATUS, server_id=node_failed, status="ADD_FAILED") == 1


def test_a_failing_v3_api_keeps_cloud_servers_and_the_last_v3_series(
    sim: Simulator, exporter, clock: Clock
) -> None:
    server = new_server(sim)
    ip = sim.add_public_ip(server, after=0)
    exporter.poll()
    before = exporter.scrape()
    assert value(before, "rackconnect_v3_up", region="DFW") == 1
    assert value(before, V3_ERRORS, region="DFW", reason="http_error") == 0
    sim.add_fault(Fault(kind="status", api="rackconnect_v3", status=500))
    sim.set_v3_status(ip, "ADDING")  # unseen while the API fails
    renamed = new_server(sim, "after-the-fault")
    for _ in range(2):
        clock.now += 60
        exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_v3_up", region="DFW") == 0
    assert value(parsed, "rackconnect_up", region="DFW") == 1
    assert value(parsed, V3_ERRORS, region="DFW", reason="http_error") == 2  # each poll
    assert value(parsed, V3_ERRORS, region="DFW", reason="timeout") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="DFW", reason="http_error") == 0
    assert value(parsed, "rackconnect_server_info", server_id=renamed) == 1  # new listing
    assert value(parsed, IP_STATUS, server_id=server, status="ACTIVE") == 1  # last good
    assert series(parsed, "rackconnect_v3_pool_info", region="DFW")
    log = exporter.log.getvalue()
    assert log.count("RackConnect v3.0 poll failed") == 1
    assert "reason=http_error" in log
    sim.clear_faults()
    clock.now += 60
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_v3_up", region="DFW") == 1
    assert value(parsed, IP_STATUS, server_id=server, status="ADDING") == 1


def test_an_unchanged_region_keeps_its_very_records(sim: Simulator, exporter, clock) -> None:
    exporter.poll()
    clock.now += 300  # the seeded ADDING resources settle
    exporter.poll()
    first = exporter.store.current.accounts[0].regions
    clock.now += 60
    exporter.poll()
    second = exporter.store.current.accounts[0].regions
    dfw = next((a, b) for a, b in zip(first, second, strict=True) if a.region == "DFW")
    assert any(s.public_ips for s in dfw[0].servers)
    assert all(map(operator.is_, dfw[0].servers, dfw[1].servers))


def test_a_changed_listing_keeps_the_other_servers_very_records(
    sim: Simulator, exporter, clock: Clock
) -> None:
    exporter.poll()
    clock.now += 300  # the seeded ADDING resources settle
    exporter.poll()
    before = next(r for r in exporter.store.current.accounts[0].regions if r.region == "DFW")
    wired = next(s for s in before.servers if s.public_ips)
    sim.set_status(wired.id, "REBOOT")
    clock.now += 60
    exporter.poll()
    after = next(r for r in exporter.store.current.accounts[0].regions if r.region == "DFW")
    by_id = {s.id: s for s in after.servers}
    assert by_id[wired.id].status == "REBOOT"
    assert by_id[wired.id].public_ips is wired.public_ips  # its v3.0 resources, attached again
    others = [s for s in before.servers if s.id != wired.id]
    assert others
    assert all(by_id[s.id] is s for s in others)


def test_an_unchanged_reading_is_not_grouped_again(
    sim: Simulator, exporter, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter.poll()
    clock.now += 300  # the seeded ADDING resources settle
    exporter.poll()
    grouped: list[str] = []
    real = RegionV3._group

    def counting(self: RegionV3, state: object) -> None:
        grouped.append(self.region)
        real(self, state)  # type: ignore[arg-type]

    monkeypatch.setattr(RegionV3, "_group", counting)
    clock.now += 60
    exporter.poll()
    assert grouped == []  # every pool's nodes, public IPs and pools as last time
    sim.add_public_ip(new_server(sim), after=0)
    clock.now += 60
    exporter.poll()
    assert grouped == ["DFW"]


def test_an_unchanged_v3_answer_is_not_parsed_again(
    sim: Simulator, exporter, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter.poll()
    clock.now += 300  # the seeded ADDING resources settle
    exporter.poll()
    parsed: list[int] = []
    real = rackconnect_v3.parse_public_ips

    def counting(body: bytes, where: str = "public_ips") -> list:
        parsed.append(len(body))
        return real(body, where)

    monkeypatch.setattr(rackconnect_v3, "parse_public_ips", counting)
    clock.now += 60
    exporter.poll()
    assert parsed == []  # the same body as last time
    sim.add_public_ip(new_server(sim), after=0)
    clock.now += 60
    exporter.poll()
    assert len(parsed) == 1


def test_a_401_from_the_v3_api_authenticates_again(sim: Simulator, exporter) -> None:
    sim.add_fault(Fault(kind="status", api="rackconnect_v3", status=401, count=1))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_v3_up", region="DFW") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="rackconnect_v3", code="401") == 1
    identity = [
        v
        for (n, labels), v in parsed.items()
        if n == "rackconnect_api_requests_total" and ("api", "identity") in labels
    ]
    assert sum(identity) == 2  # the first token, then a new one after the 401


def test_a_rate_limited_v3_api_delays_the_region_and_fails_only_v3(sim: Simulator) -> None:
    store = Store(60)
    poller = AccountPoller(account_config(sim, "vee"), store.open_account("vee"), 5.0)
    try:
        poller.authenticate()
        sim.add_fault(
            Fault(
                kind="rate_limit",
                api="rackconnect_v3",
                retry_after=120,
                retry_after_format="seconds",
            )
        )
        assert poller.poll_region("DFW") == 120
        assert poller.poll_region("ORD") is None  # no v3.0 there
    finally:
        poller.close()
    dfw = next(r for r in store.current.accounts[0].regions if r.region == "DFW")
    assert (dfw.up, dfw.v3_up) == (True, False)


def test_a_configured_v3_region_missing_from_the_catalog_fails_only_v3(
    sim: Simulator, make_exporter, clock: Clock
) -> None:
    config = account_config(sim, "vee", rackconnect_v3=("DFW", "ORD"))
    exporter = make_exporter(config, clock=clock)
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_v3_up", region="ORD") == 0
    assert value(parsed, "rackconnect_up", region="ORD") == 1
    assert value(parsed, "rackconnect_v3_up", region="DFW") == 1
    assert "no RackConnect v3.0 (rax:rackconnect) endpoint for ORD" in exporter.log.getvalue()


def test_promtool_accepts_the_v3_exposition(sim: Simulator, exporter) -> None:
    server = new_server(sim)
    sim.add_public_ip(server, after=0, outcome="ADD_FAILED", detail="bad\nline \\ here")
    exporter.poll()
    for openmetrics in (False, True):
        accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"
        body = exporter.get("/metrics", Accept=accept).content
        assert b"rackconnect_v3_public_ip_status{" in body
        if not openmetrics:
            promtool_check(body)
