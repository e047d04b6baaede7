"""Runs every account's regions on their own timers through one bounded pool of workers.

Each account and each of its regions is a task with a due time. An account task renews the
token when needed and finds the account's regions; each region task lists its region,
publishes the result and schedules its own next run one interval later (with jitter), or
later still when upstream rate-limited it. A slow or failing region therefore delays
nobody else: other regions keep their timers, and scrapes only read published snapshots.
At most ``workers`` polls run at once.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from exporter.errors import RATE_LIMITED, UpstreamError
from exporter.logs import logger

if TYPE_CHECKING:
    from exporter.polling.account import AccountPoller

DEFAULT_WORKERS = 8
JITTER = 0.05  # spread the polls of many regions by +-5% of the interval
MAX_RETRY_AFTER = 3600.0  # never wait longer than this for a rate limit to lift


class Scheduler:
    """A timer heap feeding a bounded thread pool."""

    def __init__(self, pollers: list[AccountPoller], interval: float, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.pollers = list(pollers)
        self.interval = interval
        self.workers = workers
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        # account -> regions being polled; account -> regions whose first poll is pending
        self._active: dict[str, AccountPoller] = {}
        self._regions: dict[str, set[str]] = {}
        self._first: dict[str, set[str] | None] = {}
        self._state = threading.Lock()

    def start(self) -> None:
        """Schedule every account now and start dispatching."""
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="poll")
        self._thread = threading.Thread(target=self._dispatch, name="scheduler", daemon=True)
        self._thread.start()
        for poller in self.pollers:
            self.add(poller)

    def add(self, poller: AccountPoller) -> None:
        """Start polling an account (now, if the scheduler runs; else when it starts)."""
        name = poller.account.name
        with self._state:
            self._active[name] = poller
            self._regions[name] = set()
            self._first[name] = None
        if poller not in self.pollers:
            self.pollers.append(poller)
        if self._pool is not None:
            self._at(time.monotonic(), lambda: self._account(poller))

    def remove(self, name: str) -> None:
        """Stop polling an account; a poll of it that is running finishes, nothing follows."""
        with self._state:
            poller = self._active.pop(name, None)
            self._regions.pop(name, None)
            self._first.pop(name, None)
        if poller is not None:
            self.pollers.remove(poller)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop dispatching; wait up to ``timeout`` for running polls."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _at(self, when: float, task: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), task))
            self._cond.notify()

    def _next_run(self, wait: float | None = None) -> float:
        delay = self.interval * random.uniform(1 - JITTER, 1 + JITTER)
        if wait is not None:
            delay = max(delay, min(wait, MAX_RETRY_AFTER))
        return time.monotonic() + delay

    def _dispatch(self) -> None:
        assert self._pool is not None
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                if self._stopping:
                    return
                _, _, task = heapq.heappop(self._heap)
            try:
                self._pool.submit(self._guarded, task)
            except RuntimeError:  # the pool was shut down
                return

    @staticmethod
    def _guarded(task: Callable[[], None]) -> None:
        try:
            task()
        except Exception as exc:  # a bug must not end the schedule
            logger.error("unexpected error in a poll task", exc_info=exc)

    def _current(self, poller: AccountPoller) -> bool:
        return self._active.get(poller.account.name) is poller

    def _account(self, poller: AccountPoller) -> None:
        """Renew the token, read the regions, start polling any new region."""
        name = poller.account.name
        if not self._current(poller):
            return
        started = time.monotonic()
        try:
            regions = set(poller.authenticate())
        except UpstreamError as exc:
            with self._state:
                if not self._current(poller):
                    return
                report = not self._regions[name]
                first = self._first[name] is None
                if first:
                    self._first[name] = set()
            if report:
                # No region task runs yet to report it; region tasks report it otherwise.
                poller.auth_failed(exc, time.monotonic() - started)
            if first:
                poller.store.account_polled(name)
            wait = exc.retry_after if exc.reason == RATE_LIMITED else None
            self._at(self._next_run(wait), lambda: self._account(poller))
            return
        with self._state:
            if not self._current(poller):
                return
            current = self._regions[name]
            new = sorted(regions - current)
            current.intersection_update(regions)  # a region gone stops at its next run
            current.update(new)
            first = self._first[name] is None
            if first:
                self._first[name] = set(regions)
        if first and not regions:
            poller.store.account_polled(name)
        for region in new:
            self._at(time.monotonic(), lambda r=region: self._region(poller, r))
        self._at(self._next_run(), lambda: self._account(poller))

    def _region(self, poller: AccountPoller, region: str) -> None:
        """Poll one region, then schedule its next poll."""
        name = poller.account.name
        with self._state:
            active = self._current(poller) and region in self._regions[name]
        wait = poller.poll_region(region) if active else None
        with self._state:
            pending = self._first.get(name) if self._current(poller) else None
            done = pending is not None and region in pending
            if done:
                pending.discard(region)  # type: ignore[union-attr]
            all_done = done and not pending
        if all_done:
            poller.store.account_polled(name)
        if active:
            self._at(self._next_run(wait), lambda: self._region(poller, region))
