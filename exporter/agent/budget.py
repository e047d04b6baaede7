"""The in-server API's request budget: upstream allows 30 requests a minute per server."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

RATE_LIMIT = 30  # requests per minute per server, upstream's limit
WINDOW = 60.0


class RequestBudget:
    """At most ``limit`` requests in any ``window`` seconds; a 403 blocks a whole window."""

    def __init__(
        self,
        limit: int = RATE_LIMIT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def take(self) -> bool:
        """Use one request now, or return False when none is left."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if now < self._blocked_until or len(self._sent) >= self.limit:
                return False
            self._sent.append(now)
            return True

    def block(self) -> None:
        """Upstream said 403: send nothing for a whole window."""
        with self._lock:
            self._blocked_until = self._clock() + self.window

    def wait_for(self, count: int) -> float:
        """Seconds until ``count`` requests may be sent."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            wait = max(0.0, self._blocked_until - now)
            over = len(self._sent) + count - self.limit
            if over > 0:
                wait = max(wait, self._sent[over - 1] + self.window - now)
            return wait
