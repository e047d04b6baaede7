"""``wait`` tried as a build pipeline would, against the simulator on an injected clock.

The simulator and the waiter share one fake clock: a sleep moves it, so a server that
appears after 6 s or a 30 s progress interval costs no real time.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import time

import pytest
import requests

from exporter.commands.status import poll_and_print
from exporter.commands.wait import Waiter
from exporter.config import Config
from exporter.simulator import Fault, Scenario, Simulator
from exporter.simulator.scenario import rc_metadata
from tests.conftest import account_config
from tests.expo_helpers import value

DONE = rc_metadata("DEPLOYED", managed="Complete")


class Clock:
    """Wall and monotonic time that move only when something sleeps."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cloud(clock: Clock):
    simulator = Simulator(Scenario.demo(seed=1), step_interval=None, clock=clock)
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def make_waiter(sim, clock: Clock, server_id: str, **options: object) -> tuple[Waiter, io.StringIO]:
    accounts = options.pop("accounts", None) or (account_config(sim, "acme"),)
    out = io.StringIO()
    options.setdefault("interval", 5.0)
    options.setdefault("timeout", 600.0)
    w = Waiter(
        Config(tuple(accounts)),  # type: ignore[arg-type]
        server_id,
        out=out,
        err=io.StringIO(),
        sleep=clock.sleep,
        clock=clock,
        wall=clock,
        **options,  # type: ignore[arg-type]
    )
    return w, out


def events(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_server_visible_only_after_6s_is_waited_for(cloud, clock) -> None:
    sid = cloud.add_server("acme", "ORD", "late", DONE, appear_after=6)
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 0
    assert re.search(rf"acme/ORD server {sid}: ready after \d+s$", out.getvalue())
    assert sum(clock.slept) >= 6


def test_not_found_after_the_grace_exits_3(cloud, clock) -> None:
    w, _ = make_waiter(cloud, clock, "00000000-0000-4000-8000-000000000000", not_found_grace=60)
    assert w.run() == 3
    assert 60 <= sum(clock.slept) < 120


def test_one_404_mid_wait_is_not_a_deletion(cloud, clock) -> None:
    sid = cloud.add_server("acme", "ORD", "blip", rc_metadata("DEPLOYING"))
    cloud.schedule(sid, 20, metadata=DONE)
    w, _out = make_waiter(cloud, clock, sid)
    real_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        if len(clock.slept) == 0:
            cloud.not_found_once(sid)
        real_sleep(seconds)

    w.sleep = sleep
    assert w.run() == 0
    assert "not found; reading it again" in w.report.err.getvalue()
    assert any(e[2] == 404 and sid in e[1] for e in cloud.request_log)


def test_confirmed_404_is_a_deletion(cloud, clock) -> None:
    sid = cloud.add_server("acme", "ORD", "gone", rc_metadata("DEPLOYING"))
    cloud.schedule(sid, 3, metadata={})  # keeps it from churn; then deleted below
    w, out = make_waiter(cloud, clock, sid)
    w.sleep = lambda s: (clock.sleep(s), cloud.delete_server(sid) if len(clock.slept) == 1 else 0)
    assert w.run() == 1
    assert out.getvalue().splitlines()[-1].endswith("failed: the server no longer exists")
    assert (
        len(
            [
                e
                for e in cloud.request_log
                if e[2] == 404 and f"/ord/servers/v2/100001/servers/{sid}" in e[1]
            ]
        )
        == 2
    )


def test_build_with_deployed_and_complete_is_never_ready(cloud, clock) -> None:
    sid = cloud.add_server("acme", "ORD", "building", DONE, status="BUILD")
    w, out = make_waiter(cloud, clock, sid, timeout=120)
    assert w.run() == 2
    assert "status=BUILD rackconnect=DEPLOYED managed=Complete ready=no" in out.getvalue()


def test_nova_error_exits_1(cloud, clock) -> None:
    sid = cloud.add_server("acme", "ORD", "broken", {}, status="BUILD")
    cloud.schedule(sid, 10, status="ERROR")
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 1
    assert out.getvalue().splitlines()[-1].endswith("failed: the server is in status ERROR")


def test_unprocessable_exits_1_naming_the_reason(cloud, clock) -> None:
    why = "Cloud server built in DFW; RackConnect is configured for ORD"
    sid = cloud.add_server("acme", "ORD", "elsewhere", rc_metadata("UNPROCESSABLE", reason=why))
    w, out = make_waiter(cloud, clock, sid, output="json")
    assert w.run() == 1
    last = events(out)[-1]
    assert (last["event"], last["outcome"], last["exit_code"]) == ("outcome", "failed", 1)
    assert why in last["message"]
    assert last["reason"] == why


def test_json_lines_parse_and_progress_appears_while_nothing_changes(cloud, clock) -> None:
    sid = cloud.add_server("acme", "ORD", "slow", rc_metadata("DEPLOYING"))
    cloud.schedule(sid, 200, metadata=DONE)
    w, out = make_waiter(cloud, clock, sid, output="json", progress_interval=30, max_interval=45)
    assert w.run() == 0
    docs = events(out)
    kinds = [d["event"] for d in docs]
    assert kinds[0] == "state"
    assert kinds[-1] == "outcome"
    assert kinds.count("progress") >= 5
    assert all({"time", "elapsed", "event", "message"} <= set(d) for d in docs)
    gaps = [b["elapsed"] - a["elapsed"] for a, b in itertools.pairwise(docs)]
    assert max(gaps) <= 30 + 5.0  # never silent much longer than the progress interval
    assert docs[-1]["duration"] >= 200
    assert max(clock.slept) <= 45


def test_text_progress_lines(cloud, clock) -> None:
    sid = cloud.add_server("acme", "ORD", "slow", rc_metadata("DEPLOYING"))
    w, out = make_waiter(cloud, clock, sid, timeout=95, progress_interval=30)
    assert w.run() == 2
    progress = [line for line in out.getvalue().splitlines() if "still waiting" in line]
    assert len(progress) >= 2


def test_declared_non_rackconnect_region_unprocessable_is_ready(cloud, clock) -> None:
    meta = rc_metadata("UNPROCESSABLE", managed="Complete", reason="not the RackConnect region")
    sid = cloud.add_server("acme", "DFW", "outside", meta)
    account = account_config(cloud, "acme", rackconnect=True, rackconnect_regions=("ORD",))
    w, _out = make_waiter(cloud, clock, sid, accounts=(account,))
    assert w.run() == 0
    # Inside the declared region the same state is a failure.
    inside = cloud.add_server("acme", "ORD", "inside", meta)
    w, _ = make_waiter(cloud, clock, inside, accounts=(account,))
    assert w.run() == 1


def test_exporter_readiness_follows_the_declared_regions(cloud, make_exporter) -> None:
    meta = rc_metadata("UNPROCESSABLE", managed="Complete", reason="not the RackConnect region")
    outside = cloud.add_server("acme", "DFW", "outside", meta)
    building = cloud.add_server("acme", "ORD", "building", DONE, status="BUILD")
    exporter = make_exporter(account_config(cloud, "acme", rackconnect_regions=("ORD",)))
    exporter.poll()
    parsed = exporter.scrape()
    ids = {"account": "acme"}
    assert value(parsed, "rackconnect_server_ready", server_id=outside, **ids) == 1
    assert value(parsed, "rackconnect_server_ready", server_id=building, **ids) == 0
    assert value(parsed, "rackconnect_server_status", server_id=building, status="BUILD") == 1
    assert value(parsed, "rackconnect_region_info", region="DFW", rackconnect="false") == 1
    assert value(parsed, "rackconnect_region_info", region="ORD", rackconnect="true") == 1
    page = exporter.get("/").text
    assert "BUILD" in page


@pytest.mark.slow
def test_status_exits_1_when_the_region_asked_for_fails(sim) -> None:
    config = Config((account_config(sim, "acme"),))
    sim.add_fault(Fault(kind="status", status=500, api="servers", region="ORD"))
    out, err = io.StringIO(), io.StringIO()
    assert poll_and_print(config, timeout=5, regions=["ORD"], out=out, err=err) == 1
    assert "acme/ORD: poll failed" in err.getvalue()
    out = io.StringIO()
    assert poll_and_print(config, timeout=5, regions=["DFW"], out=out, err=err) == 0
    assert poll_and_print(config, timeout=5, regions=["XYZ"], out=out, err=err) == 3
    assert poll_and_print(config, timeout=5, regions=["LON"], out=out, err=err) == 3


def test_status_shows_nova_status_and_reason(sim) -> None:
    why = "built outside the RackConnect region"
    sid = sim.add_server("acme", "ORD", "odd", rc_metadata("UNPROCESSABLE", reason=why))
    config = Config((account_config(sim, "acme"),))
    out = io.StringIO()
    poll_and_print(config, timeout=5, server=sid, out=out, err=io.StringIO())
    header, row = out.getvalue().splitlines()[:2]
    assert header.split()[4] == "STATUS"
    assert header.split()[-1] == "REASON"
    assert row.split()[4] == "ACTIVE"
    assert row.endswith(why)
    out = io.StringIO()
    poll_and_print(config, timeout=5, server=sid, output="json", out=out, err=io.StringIO())
    server = json.loads(out.getvalue())["servers"][0]
    assert (server["status"], server["unprocessable_reason"]) == ("ACTIVE", why)


def test_simulator_control_api_for_late_servers_and_transitions(cloud, clock) -> None:
    control = cloud.control_url
    body = {"account": "acme", "region": "ORD", "status": "BUILD", "appear_after": 6}
    sid = requests.post(control + "servers", json=body, timeout=5).json()["id"]
    transition = {"after": 10, "status": "ACTIVE", "metadata": DONE}
    reply = requests.post(control + f"servers/{sid}/transitions", json=transition, timeout=5)
    assert reply.status_code == 200
    bad = requests.post(control + f"servers/{sid}/transitions", json={"after": -1}, timeout=5)
    assert bad.status_code == 400
    w, _ = make_waiter(cloud, clock, sid)
    assert w.run() == 0
    assert requests.post(control + f"servers/{sid}/status", json={"status": "ERROR"}, timeout=5).ok
    assert next(s for s in cloud.servers("acme", "ORD") if s["id"] == sid)["status"] == "ERROR"


def test_ready_ends_with_how_long_each_automation_took(cloud, clock) -> None:
    """Created 600 s ago; DEPLOYED 10 s and Complete 16 s into the wait."""
    clock.now = float(int(clock.now))  # the simulator keeps whole seconds
    sid = cloud.add_server(
        "acme", "ORD", "timed", rc_metadata("DEPLOYING", managed="Pending"), created=clock() - 600
    )
    cloud.schedule(sid, 10, metadata=rc_metadata("DEPLOYED", managed="Pending"))
    cloud.schedule(sid, 16, metadata={"rax_service_level_automation": "Complete"})
    w, out = make_waiter(cloud, clock, sid, interval=1.0, max_interval=1.0, output="json")
    assert w.run() == 0
    (outcome,) = [e for e in events(out) if e["event"] == "outcome"]
    assert outcome["since_created"] == pytest.approx(616, abs=1)
    assert outcome["rackconnect_seconds"] == pytest.approx(610, abs=1)
    assert outcome["managed_seconds"] == pytest.approx(616, abs=1)
    assert outcome["message"].endswith(
        ": ready after 10m16s: RackConnect 10m10s, Managed Operations 10m16s"
    )


def test_what_was_done_before_the_wait_is_not_timed(cloud, clock) -> None:
    clock.now = float(int(clock.now))
    sid = cloud.add_server("acme", "ORD", "old", DONE, created=clock() - 3600)
    w, out = make_waiter(cloud, clock, sid)
    assert w.run() == 0
    assert out.getvalue().splitlines()[-1].endswith(f"acme/ORD server {sid}: ready after 1h")
