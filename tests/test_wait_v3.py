"""``wait`` on a RackConnect v3.0 region, against the simulator on an injected clock.

The simulator and the waiter share one fake clock: a sleep moves it, so a public IP that
takes 30 s to turn ACTIVE costs no real time.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import pytest

from exporter import cli
from exporter.commands.wait import Waiter
from exporter.simulator import Fault, Scenario, SimAccountSpec, Simulator
from exporter.simulator.rcv3 import NETWORK_DETAIL
from exporter.simulator.scenario import rc_metadata
from tests.conftest import account_config
from tests.test_simulator_v3 import v3_scenario
from tests.test_wait_pipeline import Clock
from tests.test_wait_pipeline import make_waiter as pipeline_waiter

NO_IP = "No public IP addresses available in the dedicated allocation"


def v3_account() -> SimAccountSpec:
    """An account with the rack_connect role, RackConnect v3.0 in DFW and v2.0 in ORD."""
    (account,) = v3_scenario().accounts
    return replace(account, rackconnect=True, rackconnect_region="ORD")


@pytest.fixture
def clock() -> Clock:
    c = Clock()
    c.now = float(int(c.now))  # the simulator keeps whole seconds
    return c


@pytest.fixture
def cloud(clock: Clock):
    simulator = Simulator(Scenario(accounts=[v3_account()]), step_interval=None, clock=clock)
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def make_waiter(sim, clock: Clock, server_id: str, **options: object) -> tuple[Waiter, io.StringIO]:
    account = options.pop("account", None) or account_config(sim, "vee")
    return pipeline_waiter(sim, clock, server_id, accounts=(account,), **options)


def events(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def messages(out: io.StringIO) -> list[str]:
    return [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]


def pool_id(sim: Simulator, index: int = 0) -> str:
    return sim.rackconnect_v3("vee", "DFW")["pools"][index]["id"]


def v3_requests(sim: Simulator) -> list[str]:
    return [e[1] for e in sim.request_log if "/rackconnect/v3/" in e[1]]


# --- wait on a v3.0 region ------------------------------------------------------------------


def test_adding_then_active_is_ready_and_timed(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "pipeline-01", {}, created=clock() - 60)
    ip = cloud.add_public_ip(sid, after=30)
    cloud.add_pool_node(sid, pool_id(cloud), after=45)
    w, out = make_waiter(cloud, clock, sid, output="json", interval=5.0)
    assert w.run() == 0
    docs = events(out)
    states = [d for d in docs if d["event"] == "state"]
    assert states[0]["public_ips"] == [
        {"id": ip, "status": "ADDING", "address": None, "status_detail": None}
    ]
    assert states[0]["pool_nodes"][0]["status"] == "ADDING"
    assert states[0]["ready"] is False
    # No RackConnect v2.0 metadata, on an account with the rack_connect role: not waited for.
    assert states[-1]["rackconnect"] is None
    assert states[-1]["ready"] is True
    assert states[-1]["public_ips"][0]["address"]
    outcome = docs[-1]
    assert (outcome["event"], outcome["outcome"], outcome["exit_code"]) == ("outcome", "ready", 0)
    assert outcome["rackconnect_v3_seconds"] == pytest.approx(105, abs=1)
    # Timed at the resource's own ``updated``, not at the read that saw it.
    assert re.search(r": ready after 1m\d\ds: RackConnect v3\.0 1m45s$", outcome["message"])
    # Only this server's resources were read, never the region's listings.
    reads = v3_requests(cloud)
    assert reads
    assert all(f"cloud_server_id={sid}" in r for r in reads)


def test_text_lines_show_the_v3_state(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "pipeline-02", {})
    cloud.add_public_ip(sid, after=12)
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 0
    lines = messages(out)
    where = f"vee/DFW server {sid} (pipeline-02): status=ACTIVE rackconnect=- managed=-"
    assert lines[0] == f"{where} public_ips=ADDING pool_nodes=- ready=no"
    assert lines[1].startswith(f"{where} public_ips=ACTIVE(")
    assert lines[1].endswith(") pool_nodes=- ready=yes")


def test_add_failed_exits_1_naming_the_detail(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "doomed", {})
    ip = cloud.add_public_ip(sid, after=20, outcome="ADD_FAILED", detail=NO_IP)
    w, out = make_waiter(cloud, clock, sid, output="json")
    assert w.run() == 1
    outcome = events(out)[-1]
    assert outcome["message"] == (
        f"vee/DFW server {sid}: failed: RackConnect v3.0 public IP {ip} is ADD_FAILED: {NO_IP}"
    )
    assert (outcome["resource"], outcome["resource_id"], outcome["detail"]) == (
        "public_ip",
        ip,
        NO_IP,
    )
    assert 20 <= sum(clock.slept) < 60


def test_a_failed_pool_node_exits_1(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "unbalanced", {})
    pool = pool_id(cloud, 1)
    cloud.add_public_ip(sid, after=0)
    node = cloud.add_pool_node(sid, pool, after=10, outcome="ADD_FAILED")
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 1
    assert messages(out)[-1] == (
        f"vee/DFW server {sid}: failed: RackConnect v3.0 pool node {node} of pool {pool} "
        f"is ADD_FAILED: {NETWORK_DETAIL}"
    )


def test_removing_is_waited_through_and_remove_failed_exits_1(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "shrinking", {})
    keep = cloud.add_public_ip(sid, after=0)
    going = cloud.add_public_ip(sid, after=0)
    cloud.remove_v3(going, after=25)
    w, out = make_waiter(cloud, clock, sid, output="json")
    assert w.run() == 0
    states = [d for d in events(out) if d["event"] == "state"]
    assert sorted(i["status"] for i in states[0]["public_ips"]) == ["ACTIVE", "REMOVING"]
    assert [i["id"] for i in states[-1]["public_ips"]] == [keep]
    cloud.remove_v3(keep, after=10, fail=True)
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 1
    last = messages(out)[-1]
    assert f"failed: RackConnect v3.0 public IP {keep} (" in last
    assert last.endswith(f") is REMOVE_FAILED: {NETWORK_DETAIL}")


def test_nothing_pending_is_ready_at_once(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "bare", {})
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 0
    assert clock.slept == []
    assert "public_ips=- pool_nodes=- ready=yes" in messages(out)[0]


def test_require_public_ip_without_one_times_out_with_2(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "no-ip", {})
    cloud.add_pool_node(sid, pool_id(cloud), after=0)
    w, out = make_waiter(
        cloud, clock, sid, require_public_ip=True, timeout=120, progress_interval=30
    )
    assert w.run() == 2
    assert sum(clock.slept) == pytest.approx(120)
    lines = messages(out)
    assert any("still waiting for an ACTIVE public IP, unchanged for" in line for line in lines)
    assert lines[-1] == (
        f"vee/DFW server {sid}: timed out after 2m: status=ACTIVE rackconnect=- managed=- "
        "public_ips=- pool_nodes=ACTIVE ready=yes"
    )


def test_require_public_ip_waits_for_one_to_come(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "wants-ip", {})
    w, _ = make_waiter(cloud, clock, sid, require_public_ip=True, interval=5.0, max_interval=5.0)
    real_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        real_sleep(seconds)
        if len(clock.slept) == 3:
            cloud.add_public_ip(sid, after=20)

    w.sleep = sleep
    assert w.run() == 0
    assert 35 <= sum(clock.slept) <= 45


def test_a_failing_v3_api_is_retried(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "flaky", {})
    cloud.add_public_ip(sid, after=30)
    limited = Fault(
        kind="rate_limit",
        api="rackconnect_v3",
        count=1,
        status=429,
        retry_after=17,
        retry_after_format="seconds",
    )
    cloud.add_fault(limited)
    cloud.add_fault(Fault(kind="missing_key", api="rackconnect_v3", count=1))
    w, out = make_waiter(cloud, clock, sid, interval=1.0)
    assert w.run() == 0
    err = w.report.err.getvalue().splitlines()
    assert err[0].startswith(f"wait: vee/DFW server {sid}: RackConnect v3.0: GET ")
    assert "HTTP 429" in err[0]
    assert clock.slept[0] == pytest.approx(17)  # Retry-After, not the 1 s interval
    assert "unexpected document" in err[1]
    assert all(line.endswith("; retrying") for line in err)
    assert messages(out)[-1].startswith(f"vee/DFW server {sid}: ready after")


def test_for_rackconnect_means_v3_and_for_managed_reads_no_v3(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "split", {})
    cloud.add_public_ip(sid, after=40)
    w, _ = make_waiter(cloud, clock, sid, wanted="rackconnect")
    assert w.run() == 0
    assert sum(clock.slept) >= 40
    other = cloud.add_server("vee", "DFW", "other", {})
    cloud.add_public_ip(other, after=0, outcome="ADD_FAILED")
    before = len(v3_requests(cloud))
    w, _ = make_waiter(cloud, clock, other, wanted="managed")
    assert w.run() == 0
    assert len(v3_requests(cloud)) == before


def test_a_v2_region_of_the_same_account_is_unchanged(cloud, clock) -> None:
    sid = cloud.add_server("vee", "ORD", "classic", rc_metadata("DEPLOYING"))
    cloud.schedule(sid, 20, metadata=rc_metadata("DEPLOYED"))
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 0
    assert messages(out)[0].endswith("rackconnect=DEPLOYING managed=- ready=no")
    assert v3_requests(cloud) == []
    w, _ = make_waiter(cloud, clock, sid, require_public_ip=True)
    w.report.err = err = io.StringIO()
    assert w.run() == 3
    assert err.getvalue() == (
        "wait: vee/ORD: --require-public-ip: ORD is not a RackConnect v3.0 region of vee\n"
    )


def test_v3_turned_off_waits_for_v2_metadata_instead(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "off", {})
    cloud.add_public_ip(sid, after=0, outcome="ADD_FAILED")
    account = account_config(cloud, "vee", rackconnect_v3=())
    w, out = make_waiter(cloud, clock, sid, account=account, timeout=30)
    assert w.run() == 2
    assert messages(out)[-1].endswith("rackconnect=- managed=- ready=no")
    assert v3_requests(cloud) == []


def test_require_public_ip_is_refused_where_it_cannot_apply(
    cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vee = next(a for a in cloud.accounts if a.name == "vee")
    monkeypatch.setenv("RACKSPACE_USERNAME", vee.username)
    monkeypatch.setenv("RACKSPACE_API_KEY", vee.api_key)
    monkeypatch.setenv("RACKSPACE_IDENTITY_URL", cloud.identity_url)
    assert cli.run(["wait", "--local", "--require-public-ip"]) == 3
    assert cli.run(["wait", "x", "--for", "managed", "--require-public-ip"]) == 3
    assert "--require-public-ip reads the RackConnect v3.0 API" in capsys.readouterr().err
    sid = cloud.add_server("vee", "DFW", "ready", {})
    cloud.add_public_ip(sid, after=0)
    assert cli.run(["wait", sid, "--require-public-ip", "--timeout", "10s"]) == 0
    assert "public_ips=ACTIVE(" in capsys.readouterr().out


def test_odd_statuses_are_read_as_published(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "odd", {})
    rid = cloud.add_public_ip(sid, after=0)
    cloud.set_v3_status(rid, "Pending ")  # not one of the five: UNKNOWN, waited through
    w, out = make_waiter(cloud, clock, sid, interval=5.0, max_interval=5.0)
    w.sleep = lambda s: (
        clock.sleep(s),
        len(clock.slept) == 2 and cloud.set_v3_status(rid, " active "),
    )
    assert w.run() == 0
    assert "public_ips=UNKNOWN(" in messages(out)[0]
    assert messages(out)[0].endswith("pool_nodes=- ready=no")
    assert "public_ips=ACTIVE(" in messages(out)[1]


def test_one_token_for_both_apis_and_a_401_from_v3_renews_it(cloud, clock) -> None:
    sid = cloud.add_server("vee", "DFW", "tokens", {})
    cloud.add_public_ip(sid, after=40)
    w, _ = make_waiter(cloud, clock, sid)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 2:
            cloud.add_fault(Fault(kind="status", status=401, api="rackconnect_v3", count=1))

    w.sleep = sleep
    assert w.run() == 0
    logins = [e for e in cloud.request_log if e[1].startswith("/v2.0/tokens")]
    assert len(logins) == 2  # the first, and one after the 401
    v3_codes = [e[2] for e in cloud.request_log if "/rackconnect/v3/" in e[1]]
    assert v3_codes.count(401) == 1
    assert w.report.err.getvalue() == ""  # renewed within the read: nothing to retry
