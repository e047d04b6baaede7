"""The one owner of polling: an account poller per account, each region on its own timer.

Each account and each of its regions is a task with a due time. An account task renews the
token when needed and finds the account's regions; each region task lists its region,
publishes the result and schedules its own next run one interval later (with jitter), or
later still when upstream rate-limited it. A slow or failing region therefore delays
nobody else, and scrapes only read published snapshots. ``poll_now`` runs the same steps
once, at once, for commands and tests that want one poll and its result.

A reload (``apply``) gives a changed account a new poller and a new store writer; the old
poller's writes are dropped by the store from that moment on.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from exporter import logs
from exporter.config import AccountConfig, Config, ConfigError, check_reload
from exporter.errors import RATE_LIMITED, UpstreamError
from exporter.logs import logger
from exporter.polling.account import AccountPoller
from exporter.polling.incremental import DEFAULT_FULL_EVERY
from exporter.polling.ratelimit import DEFAULT_PER_MINUTE
from exporter.polling.scheduler import Clock, DaemonPool, Pool, Scheduler
from exporter.polling.sharding import select
from exporter.store import Store

DEFAULT_WORKERS = 8
JITTER = 0.05  # spread the polls of many regions by +-5% of the interval
MAX_RETRY_AFTER = 3600.0  # never wait longer than this for a rate limit to lift
MAX_REGIONS = 6  # Rackspace has six regions: poll_now gives each its own worker


@dataclass(frozen=True)
class PollSettings:
    """How often and how hard to poll: the ``--poll.*`` flags."""

    interval: float
    timeout: float
    full_every: int = DEFAULT_FULL_EVERY
    requests_per_minute: float = DEFAULT_PER_MINUTE
    workers: int = DEFAULT_WORKERS


@dataclass(eq=False)
class _Running:
    """An account being polled: its poller and which regions it polls."""

    config: AccountConfig
    poller: AccountPoller
    regions: set[str] = field(default_factory=set)
    # Regions whose first poll is still due; None until the first authentication.
    first: set[str] | None = None


class Supervisor:
    """Owns every account's poller, so one account can change without the others.

    Every account's regions share one scheduler and its bounded pool. With a shard
    (``(index, total)``), only the accounts that fall to this shard are polled.
    """

    def __init__(
        self,
        store: Store,
        settings: PollSettings,
        *,
        shard: tuple[int, int] = (0, 1),
        clock: Clock = time.monotonic,
        pool: Pool | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if settings.workers < 1:
            raise ValueError("workers must be at least 1")
        self.store = store
        self.settings = settings
        self.shard = shard
        self.clock = clock
        self.rng = rng or random.Random()
        pool = pool or DaemonPool(settings.workers)
        self.scheduler = Scheduler(pool, clock)
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._scheduled = False

    @property
    def pollers(self) -> list[AccountPoller]:
        """The current account pollers, in the order their accounts were added."""
        return [run.poller for run in self._running.values()]

    @property
    def configs(self) -> dict[str, AccountConfig]:
        """The configuration of each account being polled, by name."""
        return {name: run.config for name, run in list(self._running.items())}

    def mine(self, accounts: Iterable[AccountConfig]) -> list[AccountConfig]:
        """The accounts this shard polls."""
        index, total = self.shard
        return select(accounts, lambda a: a.name, index, total)

    def apply(self, accounts: Iterable[AccountConfig]) -> dict[str, list[str]]:
        """Start new accounts, stop removed ones, restart changed ones; say which."""
        wanted = {a.name: a for a in self.mine(accounts)}
        changes: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
        for name in [n for n in self._running if n not in wanted]:
            self.store.remove_account(name)
            self._stop(name)
            changes["removed"].append(name)
        for name, account in wanted.items():
            current = self._running.get(name)
            if current is not None and current.config == account:
                continue
            # From here on, only the new poller's writes reach the store.
            writer = self.store.open_account(name)
            reported: list[str] = []
            if current is None:
                changes["added"].append(name)
            else:
                self._stop(name)
                # Regions no longer asked for leave; the others keep their last data.
                reported = current.poller.regions
                if account.regions is not None:
                    self.store.keep_regions(name, account.regions)
                    reported = [r for r in reported if r in account.regions]
                changes["changed"].append(name)
            poller = AccountPoller(
                account,
                writer,
                self.settings.timeout,
                full_every=self.settings.full_every,
                requests_per_minute=self.settings.requests_per_minute,
                regions=reported,
            )
            run = _Running(account, poller)
            with self._lock:
                self._running[name] = run
            if self._scheduled:
                self.scheduler.at(self.clock(), partial(self._account_task, run))
        return changes

    def schedule(self) -> None:
        """Put every account on the timer, due now; accounts added later join at once."""
        if not self._scheduled:
            self._scheduled = True
            for run in list(self._running.values()):
                self.scheduler.at(self.clock(), partial(self._account_task, run))

    def start(self) -> None:
        """Poll every account now, then each region on its own timer, from a thread."""
        self.schedule()
        self.scheduler.start()

    def poll_now(self, *names: str) -> None:
        """Poll every account (or those named) and region once, now; return when done."""
        runs = [r for n, r in self._running.items() if not names or n in names]
        if runs:
            with ThreadPoolExecutor(len(runs), thread_name_prefix="poll-now") as pool:
                list(pool.map(self._poll_account_now, runs))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling every account; polls in flight are cut off, not waited for."""
        self.scheduler.stop(timeout)
        for name in list(self._running):
            self._stop(name)

    def _stop(self, name: str) -> None:
        with self._lock:
            run = self._running.pop(name)
        run.poller.close()

    def _current(self, run: _Running) -> bool:
        return self._running.get(run.config.name) is run

    def _next_run(self, wait: float | None = None) -> float:
        interval = self.settings.interval
        delay = interval * self.rng.uniform(1 - JITTER, 1 + JITTER)
        if wait is not None:
            delay = max(delay, min(wait, MAX_RETRY_AFTER))
        return self.clock() + delay

    def _authenticate(self, run: _Running) -> list[str] | float | None:
        """Renew the token and the region list.

        Returns the regions new to the schedule; on failure how long upstream asked to
        wait (``float``) or None.
        """
        poller = run.poller
        started = self.clock()
        try:
            regions = set(poller.authenticate())
        except UpstreamError as exc:
            with self._lock:
                if not self._current(run):
                    return None
                report = not run.regions
                first = run.first is None
                if first:
                    run.first = set()
            if report:
                # No region task runs yet to report it; region tasks report it otherwise.
                poller.auth_failed(exc, self.clock() - started)
            if first:
                poller.writer.polled()
            return exc.retry_after if exc.reason == RATE_LIMITED else None
        with self._lock:
            if not self._current(run):
                return None
            new = sorted(regions - run.regions)
            run.regions.intersection_update(regions)  # a region gone stops at its next run
            run.regions.update(new)
            first = run.first is None
            if first:
                run.first = set(regions)
        if first and not regions:
            poller.writer.polled()
        return new

    def _poll_region(self, run: _Running, region: str) -> tuple[bool, float | None]:
        """Poll one region if the account still polls it: (polled, rate-limit wait)."""
        with self._lock:
            active = self._current(run) and region in run.regions
        if not active:
            return False, None
        wait = run.poller.poll_region(region)
        with self._lock:
            pending = run.first if self._current(run) else None
            done = pending is not None and region in pending
            if pending is not None and done:
                pending.discard(region)
            all_done = done and not pending
        if all_done:
            run.poller.writer.polled()
        return True, wait

    def _account_task(self, run: _Running) -> None:
        if not self._current(run):
            return
        outcome = self._authenticate(run)
        if isinstance(outcome, list):
            for region in outcome:
                self.scheduler.at(self.clock(), partial(self._region_task, run, region))
            outcome = None
        if self._current(run):
            self.scheduler.at(self._next_run(outcome), partial(self._account_task, run))

    def _region_task(self, run: _Running, region: str) -> None:
        polled, wait = self._poll_region(run, region)
        if polled:
            self.scheduler.at(self._next_run(wait), partial(self._region_task, run, region))

    def _poll_account_now(self, run: _Running) -> None:
        if not isinstance(self._authenticate(run), list):
            return
        with ThreadPoolExecutor(MAX_REGIONS, thread_name_prefix="poll-now") as pool:
            list(pool.map(lambda region: self._poll_region(run, region), sorted(run.regions)))


def reload_config(load: Callable[[], Config], supervisor: Supervisor, store: Store) -> list[str]:
    """Load the configuration again and apply it; on failure keep the running one.

    Returns why it was refused: no problems when it was applied.
    """
    try:
        config = load()
        check_reload(supervisor.configs, config)
    except ConfigError as exc:
        store.config_reloaded(False, time.time())
        logger.error(
            "config reload failed, keeping the running configuration",
            extra={"err": "; ".join(exc.problems)},
        )
        return list(exc.problems) or [str(exc)]
    logs.add_secrets(config.secrets())
    changes = supervisor.apply(config.accounts)
    store.config_reloaded(True, time.time())
    logger.info(
        "config reloaded",
        extra={k: ",".join(v) for k, v in changes.items()} | {"accounts": len(config.accounts)},
    )
    return []
