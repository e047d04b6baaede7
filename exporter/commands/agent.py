"""The ``agent`` command, run on a cloud server: the RackConnect in-server API and the
Managed Operations completion file, exposed with the exporter's metric names.

The in-server API itself is read by ``exporter.rackspace.inserver``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from requests.adapters import HTTPAdapter

from exporter.errors import UpstreamError
from exporter.exposition import Family, escape_label, labels
from exporter.logs import logger
from exporter.model import COMPLETE, NEXT, Server
from exporter.rackspace.client import ApiClient
from exporter.rackspace.inserver import (
    REQUESTS_PER_POLL,
    InServerApi,
    Reading,
    RequestBudget,
    default_url,
    region_from_url,
    xenstore_read,
    xenstore_server_id,
)
from exporter.store import Store

# The CLI assembles the agent from these; the in-server helpers are re-exported for it.
__all__ = [
    "ACCOUNT",
    "GATEWAY_INFO",
    "LINUX_COMPLETION_FILE",
    "TASK_STATUS",
    "WINDOWS_COMPLETION_FILE",
    "Agent",
    "default_completion_file",
    "default_url",
    "region_from_url",
    "xenstore_read",
]

ACCOUNT = "local"
LINUX_COMPLETION_FILE = "/tmp/rs_managed_cloud_automation_complete"
WINDOWS_COMPLETION_FILE = r"C:\windows\temp\rs_managed_cloud_automation_complete.txt"

GATEWAY_INFO = Family(
    "rackconnect_gateway_info",
    "info",
    "RackConnect gateway IP of the local server from the in-server API (absent until assigned).",
)
TASK_STATUS = Family(
    "rackconnect_automation_task_status",
    "gauge",
    "RackConnect automation tasks of the local server and their status, from the in-server "
    "API's automation_status/details (always 1).",
)


def default_completion_file() -> str:
    """Where Managed Operations leaves its completion file on this platform."""
    return WINDOWS_COMPLETION_FILE if os.name == "nt" else LINUX_COMPLETION_FILE


class Agent:
    """Polls the in-server API and the completion file into a Store for one server."""

    def __init__(
        self,
        store: Store,
        *,
        base_url: str,
        region: str,
        server_id: str | None,
        server_name: str,
        generation: str = NEXT,
        managed: bool = False,
        completion_file: str = LINUX_COMPLETION_FILE,
        account: str = ACCOUNT,
        timeout: float = 30.0,
        budget: RequestBudget | None = None,
    ) -> None:
        self.store = store
        self.account = account
        self.region = region
        self.server_id = server_id
        self.server_name = server_name
        self.generation = generation
        self.managed = managed
        self.completion_file = completion_file
        self.budget = budget or RequestBudget()
        self.client = ApiClient(
            timeout,
            on_response=lambda api, reg, code: store.count_request(account, reg, api, code),
        )
        # Every request counts against the upstream limit: the client must not retry on
        # its own. A failed poll is simply tried again at the next interval.
        for prefix in ("http://", "https://"):
            self.client.session.mount(prefix, HTTPAdapter(max_retries=0))
        self.api = InServerApi(base_url, self.client, self.budget, region)
        self.store.account_known(account, "", True, managed)

    def poll(self) -> None:
        """One reading, published to the store; never raises."""
        started = time.monotonic()
        try:
            reading = self.api.read()
        except UpstreamError as exc:
            self.store.region_failed(
                self.account, self.region, exc.reason, time.monotonic() - started
            )
            logger.warning(
                "poll failed",
                extra={
                    "account": self.account,
                    "region": self.region,
                    "reason": exc.reason,
                    "err": str(exc),
                },
            )
        else:
            self._publish(reading, time.monotonic() - started)
        self.store.account_polled(self.account)

    def _publish(self, reading: Reading, duration: float) -> None:
        if self.server_id is None:
            self.server_id = reading.server_id or xenstore_server_id() or socket.gethostname()
            logger.info("server id found", extra={"server_id": self.server_id})
        complete = Path(self.completion_file).exists()
        server = Server(
            id=self.server_id,
            name=self.server_name,
            generation=self.generation,
            created=None,
            automation_status=reading.status,
            features=reading.features,
            managed_status=COMPLETE if complete else None,
            unprocessable_reason=None,
        )
        base = labels(account=self.account, region=self.region, server_id=self.server_id)
        gateway = b""
        if reading.gateway_ip is not None:
            gateway = (
                f'rackconnect_gateway_info{{{base},gateway_ip="{reading.gateway_ip}"}} 1\n'
            ).encode()
        tasks = "".join(
            f'rackconnect_automation_task_status{{{base},task="{escape_label(name)}",'
            f'status="{escape_label(status)}"}} 1\n'
            for name, status in reading.tasks
        ).encode("utf-8", "replace")
        self.store.set_extra([(GATEWAY_INFO, gateway), (TASK_STATUS, tasks)])
        self.store.region_succeeded(self.account, self.region, [server], duration)
        logger.debug(
            "poll succeeded",
            extra={"status": reading.status, "gateway": reading.gateway_ip, "managed": complete},
        )

    def next_delay(self, interval: float) -> float:
        """The pause before the next poll: the interval, or longer to respect the budget."""
        return max(interval, self.budget.wait_for(REQUESTS_PER_POLL))

    def run(self, stop: threading.Event, interval: float) -> None:
        """Poll now, then every ``interval`` (or as the budget allows) until ``stop``."""
        while not stop.is_set():
            self.poll()
            stop.wait(self.next_delay(interval))

    def close(self) -> None:
        """Release connections."""
        self.client.close()
