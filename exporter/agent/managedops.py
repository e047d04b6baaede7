"""Managed Operations post-build automation, as the server itself sees it.

Two sources: XenStore's ``vm-data/user-metadata/rax_service_level_automation`` (the
metadata value, JSON-quoted) and the completion file Managed Operations creates when done.
``/tmp`` may be cleared at reboot, so completion is remembered in a small state file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from exporter.logs import logger
from exporter.model import COMPLETE, normalise_managed_status

MANAGED_XENSTORE_KEY = "vm-data/user-metadata/rax_service_level_automation"
LINUX_COMPLETION_FILE = "/tmp/rs_managed_cloud_automation_complete"
WINDOWS_COMPLETION_FILE = r"C:\windows\temp\rs_managed_cloud_automation_complete.txt"
LINUX_STATE_FILE = "/var/lib/rackconnect-exporter/managed-complete"


def default_completion_file() -> str:
    """Where Managed Operations leaves its completion file on this platform."""
    return WINDOWS_COMPLETION_FILE if os.name == "nt" else LINUX_COMPLETION_FILE


def default_state_file() -> str:
    """Where completion is remembered: under /var/lib, or %ProgramData% on Windows."""
    if os.name == "nt":
        base = os.environ.get("PROGRAMDATA", r"C:\ProgramData")
        return str(Path(base) / "rackconnect-exporter" / "managed-complete")
    return LINUX_STATE_FILE


class ManagedOps:
    """The local server's Managed Operations status, or None when nothing says one."""

    def __init__(
        self,
        completion_file: str,
        state_file: str | None,
        xenstore: Callable[[str], str | None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.completion_file = completion_file
        self.state_file = state_file
        self.xenstore = xenstore
        self.wall = wall
        self._warned = False

    def status(self) -> str | None:
        """Complete if the file is (or was) there or XenStore says so; else XenStore's value."""
        raw = self.xenstore(MANAGED_XENSTORE_KEY)
        status = None if raw is None else normalise_managed_status(raw)
        if status == COMPLETE or Path(self.completion_file).exists():
            self._remember()
            return COMPLETE
        if self.state_file and Path(self.state_file).exists():
            return COMPLETE
        return status

    def _remember(self) -> None:
        if not self.state_file:
            return
        path = Path(self.state_file)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wall()))
            path.write_text(f"{COMPLETE} {stamp}\n", encoding="utf-8")
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "cannot remember Managed Operations completion",
                    extra={"path": str(path), "err": exc.strerror},
                )
