"""The supervisor and its scheduler: timers on a fake clock, and one writer per region.

The scheduler tests run tasks inline on a clock the test moves. The reload tests replay, in
a fixed order, a poll that was in flight while SIGHUP replaced or removed what it polls.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from exporter.polling.account import AccountPoller
from exporter.polling.scheduler import Scheduler
from exporter.polling.supervisor import JITTER, PollSettings, Supervisor
from exporter.rackspace.cloudservers import NOTHING, Listing
from exporter.simulator import Fault
from exporter.store import Store
from tests.conftest import account_config
from tests.expo_helpers import samples, series, value


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class InlinePool:
    """Runs each task at once, in the caller's thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        fn(*args)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


def test_the_scheduler_runs_tasks_when_due_in_order() -> None:
    clock = FakeClock()
    scheduler = Scheduler(InlinePool(), clock)
    ran: list[str] = []
    scheduler.at(clock.now + 5, lambda: ran.append("b"))
    scheduler.at(clock.now + 1, lambda: ran.append("a"))
    scheduler.at(clock.now + 9, lambda: ran.append("c"))
    assert scheduler.run_due() == clock.now + 1
    assert ran == []
    clock.now += 5
    assert scheduler.run_due() == clock.now + 4
    assert ran == ["a", "b"]
    clock.now += 4
    assert scheduler.run_due() is None
    assert ran == ["a", "b", "c"]


def test_a_failing_task_does_not_end_the_schedule() -> None:
    clock = FakeClock()
    scheduler = Scheduler(InlinePool(), clock)
    ran: list[int] = []
    scheduler.at(clock.now, lambda: 1 / 0)  # type: ignore[func-returns-value]
    scheduler.at(clock.now, lambda: ran.append(1))
    scheduler.run_due()
    assert ran == [1]


def test_a_task_may_schedule_the_next() -> None:
    clock = FakeClock()
    scheduler = Scheduler(InlinePool(), clock)
    ran: list[float] = []

    def tick() -> None:
        ran.append(clock.now)
        scheduler.at(clock.now + 10, tick)

    scheduler.at(clock.now, tick)
    for _ in range(3):
        scheduler.run_due()
        clock.now += 10
    assert ran == [1000.0, 1010.0, 1020.0]


def requests_to(sim, region: str) -> int:
    return sum(1 for e in list(sim.request_log) if e[4] == region and "/servers/detail" in e[1])


def fake_supervisor(store: Store, interval: float = 60.0) -> tuple[Supervisor, FakeClock]:
    clock = FakeClock()
    settings = PollSettings(interval=interval, timeout=5)
    supervisor = Supervisor(store, settings, clock=clock, pool=InlinePool(), rng=random.Random(7))
    return supervisor, clock


def test_regions_poll_on_their_own_timers(sim) -> None:
    store = Store(60)
    supervisor, clock = fake_supervisor(store)
    supervisor.apply([account_config(sim, "acme")])
    supervisor.schedule()
    supervisor.scheduler.run_due()  # the account: token and regions
    assert not store.current.ready
    supervisor.scheduler.run_due()  # every region, once
    assert store.current.ready
    regions = {r.region for r in store.current.accounts[0].regions}
    assert regions == {"ORD", "DFW", "IAD"}
    assert {requests_to(sim, r) for r in regions} == {1}
    # nothing is due before the interval less its jitter; everything is due after it
    clock.now += 60 * (1 - JITTER) - 0.01
    supervisor.scheduler.run_due()
    assert {requests_to(sim, r) for r in regions} == {1}
    clock.now += 60 * 2 * JITTER + 0.02
    supervisor.scheduler.run_due()
    assert {requests_to(sim, r) for r in regions} == {2}


@pytest.mark.slow
def test_a_rate_limited_region_waits_as_told_and_the_others_do_not(sim) -> None:
    store = Store(60)
    supervisor, clock = fake_supervisor(store, interval=10)
    supervisor.apply([account_config(sim, "acme")])
    sim.add_fault(Fault(kind="rate_limit", api="servers", region="DFW", retry_after=300, count=1))
    supervisor.schedule()
    supervisor.scheduler.run_due()
    supervisor.scheduler.run_due()
    for _ in range(10):  # 100 s of polling
        clock.now += 10.6
        supervisor.scheduler.run_due()
    assert requests_to(sim, "ORD") >= 10
    assert requests_to(sim, "DFW") == 1
    clock.now += 200
    supervisor.scheduler.run_due()
    assert requests_to(sim, "DFW") == 2


class Gate:
    """Holds one region's listing between its HTTP answer and its publication."""

    def __init__(self, poller: AccountPoller, region: str) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        real = poller.servers.list_region

        def held(name: str, since: float | None = None, known=NOTHING) -> Listing:
            listing = real(name, since, known)
            if name == region:
                self.entered.set()
                assert self.release.wait(10)
            return listing

        poller.servers.list_region = held  # type: ignore[method-assign]


def poll_in_background(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.poll_now)
    thread.start()
    return thread


def test_a_region_removed_while_its_poll_runs_stays_removed(sim) -> None:
    """regions [ORD, DFW] -> [ORD] on SIGHUP while DFW's poll is in flight."""
    store = Store(60)
    supervisor = Supervisor(store, PollSettings(interval=60, timeout=5))
    both = account_config(sim, "acme", regions=("ORD", "DFW"))
    supervisor.apply([both])
    supervisor.poll_now()
    assert value(samples(store.current.body()), "rackconnect_up", region="DFW") == 1
    gate = Gate(supervisor.pollers[0], "DFW")
    thread = poll_in_background(supervisor)
    assert gate.entered.wait(10)
    supervisor.apply([dataclasses.replace(both, regions=("ORD",))])
    gate.release.set()
    thread.join(10)
    supervisor.poll_now()
    parsed = samples(store.current.body())
    assert value(parsed, "rackconnect_up", region="ORD") == 1
    assert value(parsed, "rackconnect_up", region="DFW") is None
    assert not [labels for (_, labels) in parsed if ("region", "DFW") in labels]
    assert [r.region for r in store.current.accounts[0].regions] == ["ORD"]
    supervisor.stop(1)


def test_a_poll_of_a_replaced_account_cannot_overwrite_the_new_one(sim) -> None:
    """A changed account's old poll finishes after the new poller published."""
    store = Store(60)
    supervisor = Supervisor(store, PollSettings(interval=60, timeout=5, full_every=1))
    old = account_config(sim, "acme", regions=("ORD",))
    supervisor.apply([old])
    supervisor.poll_now()
    gate = Gate(supervisor.pollers[0], "ORD")
    thread = poll_in_background(supervisor)
    assert gate.entered.wait(10)  # the old poller holds the ORD listing it got
    doomed = series(samples(store.current.body()), "rackconnect_server_info", region="ORD")[0]
    sim.delete_server(doomed["server_id"])
    added = sim.add_server("acme", "ORD", name="after-reload")
    supervisor.apply([dataclasses.replace(old, managed=True)])  # a changed account
    supervisor.poll_now()  # the new poller lists ORD and publishes
    gate.release.set()  # the old poll goes on and tries to publish its older listing
    thread.join(10)
    parsed = samples(store.current.body())
    ids = {lbl["server_id"] for lbl in series(parsed, "rackconnect_server_info", region="ORD")}
    assert added in ids
    assert doomed["server_id"] not in ids
    assert value(parsed, "rackconnect_account_info", account="acme", managed="true") == 1
    supervisor.stop(1)


def test_a_removed_account_gets_no_series_back_from_its_last_poll(sim) -> None:
    store = Store(60)
    supervisor = Supervisor(store, PollSettings(interval=60, timeout=5))
    acme = account_config(sim, "acme", regions=("ORD",))
    supervisor.apply([acme, account_config(sim, "initech")])
    supervisor.poll_now()
    gate = Gate(supervisor.pollers[0], "ORD")
    thread = threading.Thread(target=supervisor.poll_now, args=("acme",))
    thread.start()
    assert gate.entered.wait(10)
    supervisor.apply([account_config(sim, "initech")])
    gate.release.set()
    thread.join(10)
    parsed = samples(store.current.body())
    assert not [lbl for (_, lbl) in parsed if ("account", "acme") in lbl]
    supervisor.stop(1)


def test_a_changed_account_reports_a_failed_login_on_the_regions_it_had(sim) -> None:
    """The new poller knows the regions the old one reported; it reads none back."""
    store = Store(60)
    supervisor = Supervisor(store, PollSettings(interval=60, timeout=5))
    globex = account_config(sim, "globex")
    supervisor.apply([globex])
    supervisor.poll_now()
    supervisor.apply([dataclasses.replace(globex, managed=True)])  # a changed account
    assert supervisor.pollers[0].regions == ["DFW", "SYD"]
    sim.add_fault(Fault(kind="status", api="identity", status=500))
    supervisor.poll_now()
    parsed = samples(store.current.body())
    for region in ("DFW", "SYD"):
        assert value(parsed, "rackconnect_up", account="globex", region=region) == 0
    assert value(parsed, "rackconnect_up", region="") is None
    supervisor.stop(1)
