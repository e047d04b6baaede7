"""When ``wait`` is done: the state it reports and the verdict on it (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.errors import ExporterError
from exporter.model import AUTOMATION_FAILURES, MANAGED_FAILURES, UNPROCESSABLE, Server

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

    def fields(self) -> dict[str, Any]:
        """The state as JSON fields."""
        return {
            "status": self.status or None,
            "rackconnect": self.rackconnect,
            "managed": self.managed,
            "ready": self.ready,
        }

    def describe(self) -> str:
        """``status=ACTIVE rackconnect=DEPLOYED managed=Pending ready=no``."""
        return (
            f"status={self.status or '-'} rackconnect={self.rackconnect or '-'} "
            f"managed={self.managed or '-'} ready={'yes' if self.ready else 'no'}"
        )


def judge(
    server: Server, status: str, rackconnect: bool, managed: bool, wanted: str
) -> tuple[bool, str | None]:
    """(done, failure): whether ``wanted`` is reached, or why it never will be."""
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
    if mo_wanted and server.managed_status in MANAGED_FAILURES:
        return False, f"Managed Operations automation is {server.managed_status}"
    # Nothing is ready while Nova still builds it.
    done = (
        server.nova_done()
        and (not rc_wanted or rc_done)
        and (not mo_wanted or server.managed_done(managed))
    )
    return done, None
