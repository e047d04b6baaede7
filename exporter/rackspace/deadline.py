"""Deadlines for whole upstream requests, and the process-wide budget for large bodies.

A socket timeout bounds each read, not a request: an upstream that sends one byte a second
never trips it. Here every attempt (connect, headers and body together) gets a deadline;
one watchdog thread shuts the attempt's socket down when it passes, which ends any read
at once. ``abort`` does the same to every attempt of a client, for a stop that must not
wait for upstream.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Bodies larger than this are read and decoded only while holding one of DECODE_SLOTS, so
# however many regions answer at once, at most DECODE_SLOTS large bodies (each at most the
# client's MAX_RESPONSE_BYTES once decompressed) are in memory being decoded.
LARGE_BODY = 1024 * 1024
DECODE_SLOTS = 2
_decoding = threading.BoundedSemaphore(DECODE_SLOTS)


@contextlib.contextmanager
def decode_slot(timeout: float) -> Iterator[bool]:
    """Hold one of the DECODE_SLOTS; yields False when none freed within ``timeout``."""
    acquired = _decoding.acquire(timeout=max(timeout, 0.0))
    try:
        yield acquired
    finally:
        if acquired:
            _decoding.release()


class Attempt:
    """One request attempt's deadline and connection; ``expired`` once it was cut off."""

    def __init__(self, deadline: float, owner: object) -> None:
        self.deadline = deadline
        self.owner = owner
        self.connection: HTTPConnection | None = None
        self.expired = False
        self.done = False

    def cut(self) -> None:
        """Shut the socket down: a blocked read returns at once.

        Without a socket (connecting, or between retries) there is nothing to cut: the
        connect timeout bounds that, and the attempt is not marked expired.
        """
        sock = getattr(self.connection, "sock", None)
        if isinstance(sock, socket.socket) and not self.done:
            self.expired = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One thread that cuts off attempts whose deadline has passed."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Attempt]] = []
        self._live: set[Attempt] = set()
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, timeout: float, owner: object) -> Attempt:
        """A new attempt that must end within ``timeout`` seconds."""
        attempt = Attempt(self._clock() + timeout, owner)
        with self._cond:
            earliest = not self._heap or attempt.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (attempt.deadline, next(self._seq), attempt))
            self._live.add(attempt)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadline", daemon=True)
                self._thread.start()
            if earliest:  # else the thread wakes in time anyway: no needless wake-up
                self._cond.notify()
        return attempt

    def disarm(self, attempt: Attempt) -> None:
        """The attempt ended in time (or was given up)."""
        with self._cond:
            attempt.done = True
            self._live.discard(attempt)

    def abort(self, owner: object) -> None:
        """Cut off every live attempt of ``owner`` now."""
        with self._cond:
            attempts = [a for a in self._live if a.owner is owner]
        for attempt in attempts:
            attempt.cut()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                attempt = heapq.heappop(self._heap)[2]
                self._live.discard(attempt)
            attempt.cut()


WATCHDOG = Watchdog()
_current = threading.local()


@contextlib.contextmanager
def deadlines(timeout: float, owner: object) -> Iterator[list[Attempt]]:
    """Give every attempt made by this thread inside the block ``timeout`` seconds.

    Yields the attempts made so far (the last is the one whose answer came back).
    """
    attempts: list[Attempt] = []
    _current.scope = (timeout, owner, attempts)
    try:
        yield attempts
    finally:
        _current.scope = None
        for attempt in attempts:
            WATCHDOG.disarm(attempt)


def _arm(connection: HTTPConnection) -> None:
    scope = getattr(_current, "scope", None)
    if scope is None:
        return
    timeout, owner, attempts = scope
    if attempts:
        WATCHDOG.disarm(attempts[-1])  # a retry: the previous attempt is over
    attempt = WATCHDOG.arm(timeout, owner)
    attempt.connection = connection
    attempts.append(attempt)


class _Connection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _arm(self)
        super().request(*args, **kwargs)


class _TLSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _arm(self)
        super().request(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


POOL_CLASSES = {"http": _Pool, "https": _TLSPool}
