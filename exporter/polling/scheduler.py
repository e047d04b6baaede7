"""A timer heap feeding a bounded pool: each task runs when it is due, a few at once.

The clock and the pool are given, so tests drive the scheduler with a fake clock and a
pool that runs tasks inline: ``run_due()`` does one step of what the thread does.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from exporter.logs import logger

Task = Callable[[], None]
Clock = Callable[[], float]


class Pool(Protocol):
    """Where due tasks run: a ``concurrent.futures`` executor, or anything alike."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Run ``fn(*args)``, now or soon."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks."""
        ...


class Scheduler:
    """Runs tasks at given times (on ``clock``'s scale) in ``pool``."""

    def __init__(self, pool: Pool, clock: Clock = time.monotonic) -> None:
        self.pool = pool
        self.clock = clock
        self._heap: list[tuple[float, int, Task]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def at(self, when: float, task: Task) -> None:
        """Run ``task`` once ``clock()`` reaches ``when``."""
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), task))
            self._cond.notify()

    def run_due(self) -> float | None:
        """Hand every due task to the pool; return when the next one is due (None: none)."""
        with self._cond:
            now = self.clock()
            due = []
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap)[2])
            following = self._heap[0][0] if self._heap else None
        for task in due:
            self.pool.submit(_guarded, task)
        return following

    def start(self) -> None:
        """Dispatch due tasks from a thread of its own until ``stop``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop dispatching and drop what is queued; running tasks are not waited for."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                if not self._heap or self._heap[0][0] > self.clock():
                    wait = self._heap[0][0] - self.clock() if self._heap else None
                    self._cond.wait(wait)
                    continue
            try:
                self.run_due()
            except RuntimeError:  # the pool was shut down
                return


class DaemonPool:
    """A fixed pool of daemon threads: a poll stuck upstream never delays the exit.

    ``concurrent.futures`` threads are joined when the interpreter exits, so a poll in
    flight would hold a stopping process for as long as upstream holds the poll.
    """

    def __init__(self, workers: int, name: str = "poll") -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple] | None] = (
            queue.SimpleQueue()
        )
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Run ``fn(*args)`` on the next free thread."""
        if self._closed:
            raise RuntimeError("the pool is shut down")
        self._queue.put((fn, args))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more tasks; the threads end after their current one."""
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args = item
            fn(*args)


def _guarded(task: Task) -> None:
    try:
        task()
    except Exception as exc:  # a bug must not end the schedule
        logger.error("unexpected error in a poll task", exc_info=exc)
