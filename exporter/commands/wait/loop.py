"""The one watch loop of ``wait``: read -> judge -> report -> back off, until a verdict.

The remote and the local waiter differ only in how they read the server (``Subject.read``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from exporter.commands.wait.report import Reporter
from exporter.commands.wait.verdict import DONE, State, Timings, judge
from exporter.durations import format_duration
from exporter.errors import EXIT_FAILURE, EXIT_OK, EXIT_TIMEOUT
from exporter.model import Server
from exporter.rackconnect_v3_state import V3State

BACKOFF = 1.5


@dataclass(frozen=True)
class Read:
    """What one read of the server gave the loop."""

    server: Server | None = None  # None: nothing to judge this time (the reader said why)
    status: str = ""  # the Nova status; there is none on the server itself
    gone: str | None = None  # the server is gone: a terminal failure, for this reason
    soon: bool = False  # read again after the first interval (to confirm a 404)
    not_before: float = 0.0  # the next read waits at least this long (Retry-After, budget)
    v3: V3State | None = None  # the RackConnect v3.0 resources, on a v3.0 region


@dataclass(frozen=True)
class Subject:
    """The server watched: how lines name it, what its readiness needs, how to read it."""

    where: str
    fields: dict[str, Any]
    rackconnect: bool
    managed: bool
    read: Callable[[], Read]


class Watcher:
    """What every waiter shares: its goal, timing, output, (injectable) clock, and the loop.

    ``name`` says the server before it is found; ``ident`` is what every outcome line says
    about it (``server_id``, when known).
    """

    name = "this server"
    ident: dict[str, Any] = {}

    def __init__(
        self,
        *,
        wanted: str = "ready",
        interval: float = 5.0,
        max_interval: float = 60.0,
        timeout: float = 1800.0,
        progress_interval: float = 30.0,
        output: str = "text",
        request_timeout: float = 30.0,
        require_public_ip: bool = False,
        out: TextIO,
        err: TextIO,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.wanted = wanted
        self.require_public_ip = require_public_ip
        self.interval = interval
        self.max_interval = max(max_interval, interval)
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.sleep = sleep
        self.clock = clock
        self.report = Reporter(
            out, err, output=output, progress_interval=progress_interval, clock=clock, wall=wall
        )

    def outcome(self, outcome: str, code: int, message: str, **fields: Any) -> int:
        """The last line; returns ``code``."""
        self.report.event(
            "outcome",
            message,
            outcome=outcome,
            exit_code=code,
            duration=round(self.report.elapsed(), 3),
            **{**self.ident, **fields},
        )
        return code

    def timed_out(self, state: State | None, where: str) -> int:
        """The timeout outcome, with the last state seen (None: the server was never found)."""
        after = format_duration(self.timeout)
        if state is None:
            message = f"{self.name}: timed out after {after} before it was found"
            return self.outcome("timeout", EXIT_TIMEOUT, message)
        message = f"{where}: timed out after {after}: {state.describe()}"
        return self.outcome("timeout", EXIT_TIMEOUT, message, **state.fields())

    def watch(self, subject: Subject, deadline: float) -> int:
        """Read ``subject`` until a verdict or ``deadline``; return the exit code."""
        where, fields = subject.where, subject.fields
        rackconnect, managed = subject.rackconnect, subject.managed
        last: State | None = None
        delay = self.interval
        timings = Timings()
        while True:
            pause = delay
            got = subject.read()
            if got.gone is not None:
                message = f"{where}: failed: {got.gone}"
                return self.outcome("failed", EXIT_FAILURE, message, **fields)
            if got.soon:
                pause = min(self.interval, delay)
            server = got.server
            if server is not None:
                v3 = got.v3
                done, failure = judge(
                    server,
                    got.status,
                    rackconnect,
                    managed,
                    self.wanted,
                    v3=v3,
                    require_public_ip=self.require_public_ip,
                )
                state = State(
                    status=got.status,
                    rackconnect=server.automation_status,
                    managed=server.managed_status,
                    ready=server.ready(rackconnect, managed) and (v3 is None or v3.settled()),
                    v3=v3,
                )
                timings.observe(last, server, self.report.wall(), v3)
                if state != last:
                    name = f" ({server.name})" if server.name else ""
                    self.report.event(
                        "state", f"{where}{name}: {state.describe()}", **fields, **state.fields()
                    )
                    last = state
                    delay = pause = self.interval  # something moved: look again soon
                if failure is not None:
                    reason = server.unprocessable_reason
                    extra: dict[str, Any] = {"reason": reason} if reason else {}
                    failed = v3.failure() if v3 is not None else None
                    if failed is not None:
                        extra |= {"resource": failed.kind, "resource_id": failed.id}
                        extra["detail"] = failed.detail
                    message = f"{where}: failed: {failure}"
                    return self.outcome(
                        "failed", EXIT_FAILURE, message, **fields, **state.fields(), **extra
                    )
                if done:
                    took, durations = timings.summary(self.report.wall())
                    message = f"{where}: {DONE[self.wanted]}{took}"
                    return self.outcome(
                        "ready", EXIT_OK, message, **fields, **state.fields(), **durations
                    )
            remaining = deadline - self.clock()
            if remaining <= 0:
                return self.timed_out(last, where)
            pause = min(max(pause, got.not_before), remaining)
            extra = last.fields() if last else {}
            waiting = ""
            if last is not None and last.v3 is not None:
                waiting = last.v3.waiting_for(self.require_public_ip)
            self.report.pause(self.sleep, pause, where, waiting, **fields, **extra)
            delay = min(delay * BACKOFF, self.max_interval)
