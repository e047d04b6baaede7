"""A per-account token bucket that keeps the request rate under Rackspace's limits.

Cloud Servers allows 1,000 GET requests per minute per account by default (answering 413
or 429 beyond that). The exporter spends at most ``per_minute`` of them (500 by default,
``--poll.requests-per-minute``), with bursts of up to a fifth of that, so a full listing
of a large account starts at once while a sustained rate stays well under the limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_PER_MINUTE = 500


class TokenBucket:
    """Blocks callers just long enough to keep to ``per_minute`` with bursts of ``burst``."""

    def __init__(
        self,
        per_minute: float = DEFAULT_PER_MINUTE,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.burst = max(1.0, burst if burst is not None else per_minute / 5)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is available; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0  # reserve now; a negative balance is a queue of waiters
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
