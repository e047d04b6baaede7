"""The agent's runtime: polls this server's in-server API and Managed Operations into a Store.

Managed Operations is reported whatever the API answers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from exporter import __version__
from exporter.agent.budget import RequestBudget
from exporter.agent.inserver import REQUESTS_PER_POLL, Reading
from exporter.agent.managedops import LINUX_COMPLETION_FILE, ManagedOps
from exporter.agent.source import OnServer
from exporter.agent.xenstore import xenstore_read, xenstore_server_id
from exporter.errors import UpstreamError
from exporter.logs import format_exception, logger
from exporter.model import NEXT
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer

ACCOUNT = "local"


class Agent:
    """Polls the in-server API and the completion file into a Store for one server.

    The store renders ``AGENT_FAMILIES``: the gateway and task families come with the
    server's record.
    """

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
        rackconnect: bool = True,
        completion_file: str = LINUX_COMPLETION_FILE,
        state_file: str | None = None,
        xenstore: Callable[[str], str | None] = xenstore_read,
        account: str = ACCOUNT,
        timeout: float = 30.0,
        budget: RequestBudget | None = None,
    ) -> None:
        self.store = store
        self.writer = store.open_account(account)
        self.account = account
        self.region = region
        self.server_id = server_id
        self.server_name = server_name
        self.generation = generation
        self.managed = managed
        self.source = OnServer(
            base_url=base_url,
            region=region,
            managed_ops=ManagedOps(completion_file, state_file, xenstore),
            timeout=timeout,
            budget=budget,
            on_response=self.writer.count_request,
        )
        self._last: Reading | None = None
        self.writer.known("", rackconnect, managed)

    def poll(self) -> None:
        """One reading, published to the store; never raises."""
        started = time.monotonic()
        try:
            reading = self.source.api.read()
        except UpstreamError as exc:
            if exc.status == 404:  # no RackConnect here: Managed Operations still counts
                self._publish(Reading.of_status(), time.monotonic() - started)
                self.writer.polled()
                return
            # The API failed: Managed Operations is still reported, with the last reading.
            self._publish(self._last or Reading.of_status(), 0.0)
            self.writer.failed(self.region, exc.reason, time.monotonic() - started)
            logger.warning(
                "poll failed",
                extra={
                    "account": self.account,
                    "region": self.region,
                    "reason": exc.reason,
                    "err": format_exception(exc),
                },
            )
        else:
            self._last = reading
            self._publish(reading, time.monotonic() - started)
        self.writer.polled()

    def _publish(self, reading: Reading, duration: float) -> None:
        if self.server_id is None:
            self.server_id = reading.server_id or xenstore_server_id() or socket.gethostname()
            logger.info("server id found", extra={"server_id": self.server_id})
        server = self.source.server(reading, self.server_id, self.server_name, self.generation)
        self.writer.succeeded(self.region, [server], duration)
        logger.debug(
            "poll succeeded",
            extra={
                "status": reading.status,
                "gateway": reading.gateway_ip,
                "managed": server.managed_status,
            },
        )

    def next_delay(self, interval: float) -> float:
        """The pause before the next poll: the interval, or longer to respect the budget."""
        return max(interval, self.source.budget.wait_for(REQUESTS_PER_POLL))

    def run(self, stop: threading.Event, interval: float) -> None:
        """Poll now, then every ``interval`` (or as the budget allows) until ``stop``."""
        while not stop.is_set():
            self.poll()
            stop.wait(self.next_delay(interval))

    def starter(
        self, interval: float
    ) -> Callable[[ExporterHTTPServer, threading.Event], Callable[[], None]]:
        """What the serving lifecycle calls once listening: polls in a thread until stopped."""

        def start(httpd: ExporterHTTPServer, stop: threading.Event) -> Callable[[], None]:
            thread = threading.Thread(
                target=self.run, args=(stop, interval), name="agent", daemon=True
            )
            thread.start()
            logger.info(
                "rackconnect-exporter agent started",
                extra={
                    "version": __version__,
                    "address": httpd.url,
                    "api": self.source.api.base_url,
                },
            )

            def stop_agent() -> None:
                thread.join(5)
                self.close()

            return stop_agent

        return start

    def close(self) -> None:
        """Release connections."""
        self.source.close()
