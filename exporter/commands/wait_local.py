"""``wait --local``: on the cloud server itself, block until its post-build automation is done.

RackConnect from the in-server API (``automation_status``; a 404 is "not there yet"),
Managed Operations from XenStore and the completion file. The verdict is the one of
``wait SERVER_ID``, with the same exit codes.
"""

from __future__ import annotations

from typing import Any

from requests.adapters import HTTPAdapter

from exporter.commands.wait_report import Pacing
from exporter.commands.wait_verdict import DONE, State, judge
from exporter.errors import EXIT_FAILURE, EXIT_OK, EXIT_TIMEOUT, UpstreamError
from exporter.flags import format_duration
from exporter.model import NEXT, Server
from exporter.rackspace.client import ApiClient
from exporter.rackspace.inserver import InServerApi, RequestBudget
from exporter.rackspace.managedops import ManagedOps

BACKOFF = 1.5


class LocalWaiter(Pacing):
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
        self.managed_ops = managed_ops
        self.budget = RequestBudget(clock=self.clock)
        self.client = ApiClient(self.request_timeout)
        for prefix in ("http://", "https://"):  # every request counts against 30 a minute
            self.client.session.mount(prefix, HTTPAdapter(max_retries=0))
        self.api = InServerApi(base_url, self.client, self.budget, region)

    def _rackconnect_status(self) -> str | None:
        if not self.rackconnect:
            return None
        try:
            return self.api.status()
        except UpstreamError as exc:
            if exc.status != 404:
                self.report.retry(f"in-server API: {exc}; retrying")
            return None

    def run(self) -> int:
        """Wait; return the exit code."""
        try:
            return self._run()
        finally:
            self.client.close()

    def _run(self) -> int:
        deadline = self.clock() + self.timeout
        last: State | None = None
        delay = self.interval
        where = "this server"
        while True:
            server = Server(
                id="local",
                name="",
                generation=NEXT,
                created=None,
                automation_status=self._rackconnect_status(),
                features=(),
                managed_status=self.managed_ops.status(),
                unprocessable_reason=None,
            )
            done, failure = judge(server, "", self.rackconnect, self.managed, self.wanted)
            state = State(
                status="",
                rackconnect=server.automation_status,
                managed=server.managed_status,
                ready=server.ready(self.rackconnect, self.managed),
            )
            if state != last:
                self.report.event("state", f"{where}: {state.describe()}", **state.fields())
                last, delay = state, self.interval
            if failure is not None:
                return self.outcome(
                    "failed", EXIT_FAILURE, f"{where}: failed: {failure}", **state.fields()
                )
            if done:
                return self.outcome(
                    "ready", EXIT_OK, f"{where}: {DONE[self.wanted]}", **state.fields()
                )
            remaining = deadline - self.clock()
            if remaining <= 0:
                after = format_duration(self.timeout)
                message = f"{where}: timed out after {after}: {state.describe()}"
                return self.outcome("timeout", EXIT_TIMEOUT, message, **state.fields())
            pause = min(max(delay, self.budget.wait_for(1)), remaining)
            self.report.pause(self.sleep, pause, where, **state.fields())
            delay = min(delay * BACKOFF, self.max_interval)
