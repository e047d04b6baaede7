"""When ``wait`` is done: the state it reports and the verdict on it (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.errors import ExporterError
from exporter.model import (
    AUTOMATION_FAILURES,
    COMPLETE,
    DEPLOYED,
    MANAGED_FAILURES,
    UNPROCESSABLE,
    Server,
)
from exporter.rackconnect_v3_state import V3State

TARGETS = ("rackconnect", "managed", "ready")
# Nova statuses after which automation will never run.
BROKEN_STATUSES = frozenset({"ERROR", "DELETED"})

DONE = {
    "ready": "ready",
    "rackconnect": "RackConnect automation done",
    "managed": "Managed Operations automation done",
}


class WaitError(ExporterError):
    """The wait cannot go on; ``code`` is the exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class State:
    """What one read of the server said."""

    status: str
    rackconnect: str | None
    managed: str | None
    ready: bool
    v3: V3State | None = None  # None: not a RackConnect v3.0 region (or not asked for)

    def fields(self) -> dict[str, Any]:
        """The state as JSON fields."""
        v3 = self.v3.fields() if self.v3 is not None else {}
        return {
            "status": self.status or None,
            "rackconnect": self.rackconnect,
            "managed": self.managed,
            **v3,
            "ready": self.ready,
        }

    def describe(self) -> str:
        """``status=ACTIVE rackconnect=DEPLOYED managed=Pending ready=no``, with
        ``public_ips=... pool_nodes=...`` before ``ready`` on a v3.0 region."""
        v3 = f"{self.v3.describe()} " if self.v3 is not None else ""
        return (
            f"status={self.status or '-'} rackconnect={self.rackconnect or '-'} "
            f"managed={self.managed or '-'} {v3}ready={'yes' if self.ready else 'no'}"
        )


def judge(
    server: Server,
    status: str,
    rackconnect: bool,
    managed: bool,
    wanted: str,
    *,
    v3: V3State | None = None,
    require_public_ip: bool = False,
) -> tuple[bool, str | None]:
    """(done, failure): whether ``wanted`` is reached, or why it never will be.

    On a RackConnect v3.0 region (``v3`` given) RackConnect also means v3.0: every public
    IP and pool membership ``ACTIVE`` (and one public IP, with ``require_public_ip``).
    """
    rc_wanted = wanted in ("rackconnect", "ready")
    mo_wanted = wanted in ("managed", "ready")
    if status.upper() in BROKEN_STATUSES:
        return False, f"the server is in status {status.upper()}"
    rc_done = server.rackconnect_done(rackconnect)
    if rc_wanted and server.automation_status in AUTOMATION_FAILURES and not rc_done:
        failure = f"RackConnect automation is {server.automation_status}"
        if server.automation_status == UNPROCESSABLE:
            failure += f" ({server.unprocessable_reason or 'no reason given'})"
        return False, failure
    v3_failure = v3.failure() if v3 is not None else None
    if rc_wanted and v3_failure is not None:
        return False, v3_failure.failure()
    if mo_wanted and server.managed_status in MANAGED_FAILURES:
        return False, f"Managed Operations automation is {server.managed_status}"
    # Nothing is ready while Nova still builds it.
    done = (
        server.nova_done()
        and (not rc_wanted or (rc_done and (v3 is None or v3.done(require_public_ip))))
        and (not mo_wanted or server.managed_done(managed))
    )
    return done, None


def span(seconds: float) -> str:
    """``7m12s``: whole seconds, as hours, minutes and seconds."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


class Timings:
    """How long each automation took, from the server's ``created``, as ``wait`` saw it.

    Only a change seen during the wait is timed: at the server's ``updated`` when that
    moved with the change, else at the read that saw it.
    """

    NAMES = {
        "rackconnect": "RackConnect",
        "rackconnect_v3": "RackConnect v3.0",
        "managed": "Managed Operations",
    }

    def __init__(self) -> None:
        self.created: float | None = None
        self.took: dict[str, float] = {}

    def observe(
        self, last: State | None, server: Server, now: float, v3: V3State | None = None
    ) -> None:
        """Record what finished between the previous read (``last``) and this one."""
        self.created = server.created
        if last is None or server.created is None:
            return
        at = server.updated if server.updated is not None and server.updated <= now else now
        if server.automation_status == DEPLOYED and last.rackconnect != DEPLOYED:
            self.took.setdefault("rackconnect", at - server.created)
        if server.managed_status == COMPLETE and last.managed != COMPLETE:
            self.took.setdefault("managed", at - server.created)
        if v3 is not None and last.v3 is not None and v3.settled() and not last.v3.settled():
            v3_at = v3.updated if v3.updated is not None and v3.updated <= now else now
            self.took.setdefault("rackconnect_v3", v3_at - server.created)

    def summary(self, now: float) -> tuple[str, dict[str, float]]:
        """`` after 7m12s: RackConnect 3m05s, ...`` and the same as JSON fields."""
        if self.created is None:
            return "", {}
        total = now - self.created
        fields = {"since_created": round(total, 3)}
        fields |= {f"{k}_seconds": round(v, 3) for k, v in self.took.items()}
        parts = ", ".join(f"{self.NAMES[k]} {span(v)}" for k, v in self.took.items())
        return f" after {span(total)}" + (f": {parts}" if parts else ""), fields
