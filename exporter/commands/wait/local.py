"""``wait --local``: on the cloud server itself, block until its post-build automation is done.

RackConnect from the in-server API (``automation_status``; a 404 is "not there yet"),
Managed Operations from XenStore and the completion file, both read by
``exporter.agent.source``. The verdict is the one of ``wait SERVER_ID``, with the same
exit codes.
"""

from __future__ import annotations

from typing import Any

from exporter.agent.budget import RequestBudget
from exporter.agent.inserver import Reading
from exporter.agent.managedops import ManagedOps
from exporter.agent.source import OnServer
from exporter.commands.wait.loop import Read, Subject, Watcher
from exporter.errors import UpstreamError


class LocalWaiter(Watcher):
    """Polls the in-server API and Managed Operations until a verdict."""

    def __init__(
        self,
        *,
        base_url: str,
        region: str,
        rackconnect: bool,
        managed: bool,
        managed_ops: ManagedOps,
        **pacing: Any,
    ) -> None:
        super().__init__(**pacing)
        self.rackconnect = rackconnect
        self.managed = managed
        self.source = OnServer(
            base_url=base_url,
            region=region,
            managed_ops=managed_ops,
            timeout=self.request_timeout,
            budget=RequestBudget(clock=self.clock),
        )

    def _read(self) -> Read:
        reading = Reading.of_status()
        if self.rackconnect:
            try:
                reading = self.source.status()
            except UpstreamError as exc:
                self.report.retry(f"in-server API: {exc}; retrying")
        server = self.source.server(reading, "local")
        return Read(server, not_before=self.source.budget.wait_for(1))

    def run(self) -> int:
        """Wait; return the exit code."""
        subject = Subject(self.name, {}, self.rackconnect, self.managed, self._read)
        try:
            return self.watch(subject, self.clock() + self.timeout)
        finally:
            self.source.close()
