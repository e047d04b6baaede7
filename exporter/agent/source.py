"""This server's own state: the in-server API, within its budget, and Managed Operations."""

from __future__ import annotations

from exporter.agent.budget import RequestBudget
from exporter.agent.inserver import InServerApi, Reading
from exporter.agent.managedops import ManagedOps
from exporter.errors import UpstreamError
from exporter.model import NEXT, Server
from exporter.rackspace.client import ApiClient, OnResponse
from exporter.rackspace.retry import NO_RETRY


class OnServer:
    """What ``agent`` and ``wait --local`` read: the in-server API and Managed Operations.

    Every request counts against the upstream limit, so none is retried (a failed poll is
    tried again at the next one); each keeps the client's whole-request deadline.
    """

    def __init__(
        self,
        *,
        base_url: str,
        region: str,
        managed_ops: ManagedOps,
        timeout: float,
        budget: RequestBudget | None = None,
        on_response: OnResponse | None = None,
    ) -> None:
        self.budget = budget or RequestBudget()
        self.client = ApiClient(timeout, on_response=on_response, retry=NO_RETRY)
        self.api = InServerApi(base_url, self.client, self.budget, region)
        self.managed_ops = managed_ops

    def status(self) -> Reading:
        """The automation status alone, in one request; a 404 (no API here yet) reads as none."""
        try:
            return Reading.of_status(self.api.status())
        except UpstreamError as exc:
            if exc.status == 404:
                return Reading.of_status()
            raise

    def server(
        self, reading: Reading, server_id: str, name: str = "", generation: str = NEXT
    ) -> Server:
        """The server record for an in-server reading, with Managed Operations read now."""
        return Server(
            id=server_id,
            name=name,
            generation=generation,
            created=None,
            automation_status=reading.status,
            features=reading.features,
            managed_status=self.managed_ops.status(),
            unprocessable_reason=None,
            gateway_ip=reading.gateway_ip,
            tasks=reading.tasks,
        )

    def close(self) -> None:
        """Cut off a request in flight and release connections."""
        self.client.close()
