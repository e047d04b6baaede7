"""Automation history over real HTTP: the simulator's servers change state on a fake clock."""

from __future__ import annotations

import pytest

from exporter.exposition.history import BUCKETS, changes
from exporter.model import Server
from exporter.simulator import Fault, Simulator
from exporter.simulator.scenario import rc_metadata
from tests.conftest import Exporter, account_config
from tests.expo_helpers import promtool_check, series, value
from tests.test_simulator import Clock

DURATION = "rackconnect_automation_duration_seconds"
TRANSITIONS = "rackconnect_automation_transitions_total"


def start(sim: Simulator, make_exporter, **overrides: object) -> tuple[Clock, Exporter]:
    clock = Clock()  # one wall clock for the simulated cloud and the exporter's store
    sim.clock = clock
    return clock, make_exporter(account_config(sim, "acme", **overrides), clock=clock)


def counts(parsed: dict, automation: str) -> dict[str, float]:
    """outcome -> observations, for account acme."""
    return {
        lbl["outcome"]: parsed[(f"{DURATION}_count", frozenset(lbl.items()))]
        for lbl in series(parsed, f"{DURATION}_count", account="acme", automation=automation)
    }


def transitions(parsed: dict) -> dict[tuple[str, str, str, str], float]:
    """(region, automation, from, to) -> count, for account acme."""
    return {
        (lbl["region"], lbl["automation"], lbl["from"], lbl["to"]): parsed[
            (TRANSITIONS, frozenset(lbl.items()))
        ]
        for lbl in series(parsed, TRANSITIONS, account="acme")
    }


def history(parsed: dict) -> dict:
    """Every sample of the two history families."""
    return {k: v for k, v in parsed.items() if k[0].startswith((DURATION, TRANSITIONS))}


@pytest.mark.slow
def test_a_server_seen_finishing_is_observed_once_from_its_created_time(sim, make_exporter):
    clock, exporter = start(sim, make_exporter)
    created = clock.now - 600
    sid = sim.add_server(
        "acme", "ORD", "web-1", rc_metadata("DEPLOYING", managed="Pending"), created=created
    )
    exporter.poll()
    for second in range(1, 21):  # polled every second, for 20 seconds
        clock.now += 1
        if second == 10:
            sim.set_metadata(sid, {"rackconnect_automation_status": "DEPLOYED"})
        if second == 16:
            sim.set_metadata(sid, {"rax_service_level_automation": "Complete"})
        exporter.poll()

    for openmetrics in (False, True):
        parsed = exporter.scrape(openmetrics)
        rc = {"account": "acme", "region": "ORD", "automation": "rackconnect"}
        managed = {"account": "acme", "region": "ORD", "automation": "managed"}
        assert value(parsed, f"{DURATION}_count", outcome="DEPLOYED", **rc) == 1
        assert value(parsed, f"{DURATION}_sum", outcome="DEPLOYED", **rc) == 610
        assert value(parsed, f"{DURATION}_count", outcome="Complete", **managed) == 1
        assert value(parsed, f"{DURATION}_sum", outcome="Complete", **managed) == 616
        # 610 s falls in the 900 s bucket, not in the 600 s one.
        assert value(parsed, f"{DURATION}_bucket", outcome="DEPLOYED", le="600.0", **rc) == 0
        assert value(parsed, f"{DURATION}_bucket", outcome="DEPLOYED", le="900.0", **rc) == 1
        assert value(parsed, f"{DURATION}_bucket", outcome="DEPLOYED", le="+Inf", **rc) == 1
        # The demo fleet's servers, finished or not, were there from the start: not counted.
        assert counts(parsed, "rackconnect") == {"DEPLOYED": 1}
        assert counts(parsed, "managed") == {"Complete": 1}
        assert transitions(parsed) == {
            ("ORD", "rackconnect", "DEPLOYING", "DEPLOYED"): 1,
            ("ORD", "managed", "Pending", "Complete"): 1,
        }
    promtool_check(exporter.get("/metrics").content)

    # A restart sees the same server already finished: it adds nothing.
    restarted = make_exporter(account_config(sim, "acme"), clock=clock)
    restarted.poll()
    clock.now += 1
    restarted.poll()
    parsed = restarted.scrape()
    assert counts(parsed, "rackconnect") == {"DEPLOYED": 0}
    assert counts(parsed, "managed") == {"Complete": 0}
    assert transitions(parsed) == {}


def test_without_a_new_updated_time_the_poll_time_counts() -> None:
    def record(status: str, updated: float | None) -> Server:
        return Server("s1", "web", "next", 1000.0, status, (), None, None, "ACTIVE", updated)

    found = changes([record("DEPLOYING", 1100.0)], [record("DEPLOYED", 1100.0)], now=1300.0)
    assert [c.duration for c in found] == [300.0]
    found = changes([record("DEPLOYING", 1100.0)], [record("DEPLOYED", 1250.0)], now=1300.0)
    assert [c.duration for c in found] == [250.0]
    # An upstream clock ahead of ours never puts the transition after the poll.
    found = changes([record("DEPLOYING", 1100.0)], [record("DEPLOYED", 1400.0)], now=1300.0)
    assert [c.duration for c in found] == [300.0]


def test_first_generation_servers_have_no_managed_history() -> None:
    def record(generation: str, managed: str) -> Server:
        return Server("7", "old", generation, None, "DEPLOYING", (), managed, None)

    assert changes([record("first", "Pending")], [record("first", "Complete")], 5.0) == []
    found = changes([record("next", "Pending")], [record("next", "Complete")], 5.0)
    assert [(c.automation, c.before, c.after) for c in found] == [
        ("managed", "Pending", "Complete")
    ]
    assert found[0].duration is None  # no created time: counted, not timed


def test_a_key_that_appears_is_a_transition_from_none_and_a_first_sighting_is_none(
    sim, make_exporter
):
    clock, exporter = start(sim, make_exporter)
    sid = sim.add_server("acme", "DFW", "fresh", {})
    exporter.poll()
    clock.now += 5
    sim.set_metadata(sid, {"rackconnect_automation_status": "DEPLOYING"})
    late = sim.add_server("acme", "DFW", "late", rc_metadata("DEPLOYED", managed="Complete"))
    exporter.poll()
    clock.now += 5
    sim.set_metadata(sid, {"rackconnect_automation_status": "FAILED"})
    exporter.poll()

    parsed = exporter.scrape(openmetrics=True)
    # The late server was first seen finished: nothing for it.
    assert late
    assert transitions(parsed) == {
        ("DFW", "rackconnect", "none", "DEPLOYING"): 1,
        ("DFW", "rackconnect", "DEPLOYING", "FAILED"): 1,
    }
    assert counts(parsed, "rackconnect") == {"DEPLOYED": 0, "FAILED": 1}
    sums = {
        lbl["region"]: parsed[(f"{DURATION}_sum", frozenset(lbl.items()))]
        for lbl in series(parsed, f"{DURATION}_sum", account="acme", outcome="FAILED")
    }
    assert sums == {"DFW": 10}


def test_a_failed_poll_then_a_full_listing_counts_each_change_once(sim, make_exporter):
    clock, exporter = start(sim, make_exporter)
    sid = sim.add_server(
        "acme", "IAD", "db-1", rc_metadata("DEPLOYING", managed="In Progress"), created=clock.now
    )
    exporter.poll()
    clock.now += 30
    sim.set_metadata(sid, {"rackconnect_automation_status": "DEPLOYED"})
    sim.add_fault(Fault(kind="status", api="servers", region="IAD", status=404))
    exporter.poll()  # fails: the region keeps its last good records
    sim.clear_faults()
    clock.now += 30
    exporter.poll()
    clock.now += 30
    exporter.poll()

    parsed = exporter.scrape()
    rc = {"account": "acme", "region": "IAD", "automation": "rackconnect"}
    assert value(parsed, f"{DURATION}_count", outcome="DEPLOYED", **rc) == 1
    # Upstream stamped the change at +30 s; the exporter saw it at +60 s.
    assert value(parsed, f"{DURATION}_sum", outcome="DEPLOYED", **rc) == 30
    assert transitions(parsed) == {("IAD", "rackconnect", "DEPLOYING", "DEPLOYED"): 1}


def test_history_survives_a_reload_and_leaves_with_its_region(sim, make_exporter):
    clock, exporter = start(sim, make_exporter)
    ord_server = sim.add_server("acme", "ORD", "a", rc_metadata("DEPLOYING"), created=clock.now)
    dfw_server = sim.add_server("acme", "DFW", "b", rc_metadata("DEPLOYING"), created=clock.now)
    exporter.poll()
    clock.now += 60
    sim.set_metadata(ord_server, {"rackconnect_automation_status": "DEPLOYED"})
    sim.set_metadata(dfw_server, {"rackconnect_automation_status": "DEPLOYED"})
    exporter.poll()
    before = exporter.scrape()
    assert set(transitions(before)) == {
        ("ORD", "rackconnect", "DEPLOYING", "DEPLOYED"),
        ("DFW", "rackconnect", "DEPLOYING", "DEPLOYED"),
    }

    # A reload that keeps the account: the history stays, and is not counted again.
    exporter.supervisor.apply([account_config(sim, "acme")])
    exporter.poll()
    assert history(exporter.scrape()) == history(before)

    # The account now polls DFW only: ORD's history leaves with ORD.
    exporter.supervisor.apply([account_config(sim, "acme", regions=("DFW",))])
    exporter.poll()
    after = exporter.scrape()
    assert transitions(after) == {("DFW", "rackconnect", "DEPLOYING", "DEPLOYED"): 1}
    assert series(after, f"{DURATION}_count", region="ORD") == []

    # ORD comes back: its servers are first sightings again, so nothing is counted for them.
    exporter.supervisor.apply([account_config(sim, "acme")])
    exporter.poll()
    clock.now += 60
    exporter.poll()
    back = exporter.scrape()
    assert transitions(back) == {("DFW", "rackconnect", "DEPLOYING", "DEPLOYED"): 1}
    assert value(back, f"{DURATION}_count", region="ORD", outcome="DEPLOYED") == 0


def test_history_lines_are_rendered_only_when_a_transition_happens(sim, make_exporter):
    clock, exporter = start(sim, make_exporter)
    sid = sim.add_server("acme", "ORD", "c", rc_metadata("DEPLOYING"), created=clock.now)
    exporter.poll()

    def history_parts() -> tuple:
        region = next(r for r in exporter.store.current.accounts[0].regions if r.region == "ORD")
        return region.parts[-2:]

    first = history_parts()
    clock.now += 1
    exporter.poll()
    assert all(a is b for a, b in zip(history_parts(), first, strict=True))
    clock.now += 1
    sim.set_metadata(sid, {"rackconnect_automation_status": "DEPLOYED"})
    exporter.poll()
    assert all(a is not b for a, b in zip(history_parts(), first, strict=True))


def test_buckets_run_from_a_minute_to_a_day() -> None:
    assert BUCKETS[0] == 60
    assert BUCKETS[-1] == 86400
    assert list(BUCKETS) == sorted(set(BUCKETS))
