"""The ``agent`` command, run on a cloud server: the RackConnect in-server API and
Managed Operations (XenStore, the completion file), exposed with the exporter's metric names.

The in-server API itself is read by ``exporter.rackspace.inserver``; Managed Operations by
``exporter.rackspace.managedops``. Managed Operations is reported whatever the API answers.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from requests.adapters import HTTPAdapter

from exporter import __version__
from exporter.commands import common
from exporter.commands.lifecycle import run_server
from exporter.errors import EXIT_USAGE, UpstreamError, UsageError
from exporter.exposition.families import GATEWAY_INFO, TASK_STATUS
from exporter.exposition.render import sample
from exporter.logs import format_exception, logger
from exporter.model import NEXT, Server
from exporter.rackspace.client import ApiClient
from exporter.rackspace.inserver import (
    REQUESTS_PER_POLL,
    XENSTORE_COMMAND,
    InServerApi,
    Reading,
    RequestBudget,
    default_url,
    region_from_url,
    xenstore_read,
    xenstore_server_id,
)
from exporter.rackspace.managedops import (
    LINUX_COMPLETION_FILE,
    ManagedOps,
    default_completion_file,
    default_state_file,
)
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer

ACCOUNT = "local"


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
        self.completion_file = completion_file
        self.managed_ops = ManagedOps(completion_file, state_file, xenstore)
        self._last: Reading | None = None
        self.budget = budget or RequestBudget()
        self.client = ApiClient(
            timeout,
            on_response=self.writer.count_request,
        )
        # Every request counts against the upstream limit: the client must not retry on
        # its own. A failed poll is simply tried again at the next interval.
        for prefix in ("http://", "https://"):
            self.client.session.mount(prefix, HTTPAdapter(max_retries=0))
        self.api = InServerApi(base_url, self.client, self.budget, region)
        self.writer.known("", rackconnect, managed)

    def poll(self) -> None:
        """One reading, published to the store; never raises."""
        started = time.monotonic()
        try:
            reading = self.api.read()
        except UpstreamError as exc:
            if exc.status == 404:  # no RackConnect here: Managed Operations still counts
                self._publish(Reading(None, (), (), None, None), time.monotonic() - started)
                self.writer.polled()
                return
            # The API failed: Managed Operations is still reported, with the last reading.
            self._publish(self._last or Reading(None, (), (), None, None), 0.0)
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
        managed_status = self.managed_ops.status()
        server = Server(
            id=self.server_id,
            name=self.server_name,
            generation=self.generation,
            created=None,
            automation_status=reading.status,
            features=reading.features,
            managed_status=managed_status,
            unprocessable_reason=None,
        )
        ids = {"account": self.account, "region": self.region, "server_id": self.server_id}
        gateway = ""
        if reading.gateway_ip is not None:
            gateway = sample(GATEWAY_INFO, 1, **ids, gateway_ip=reading.gateway_ip)
        tasks = "".join(
            sample(TASK_STATUS, 1, **ids, task=name, status=status)
            for name, status in reading.tasks
        )
        self.store.set_extra(
            [(GATEWAY_INFO, gateway.encode()), (TASK_STATUS, tasks.encode("utf-8", "replace"))]
        )
        self.writer.succeeded(self.region, [server], duration)
        logger.debug(
            "poll succeeded",
            extra={
                "status": reading.status,
                "gateway": reading.gateway_ip,
                "managed": managed_status,
            },
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


@dataclass(frozen=True)
class Local:
    """Where the on-server API is and what this server has, from the flags and XenStore."""

    region: str
    url: str
    managed: bool
    rackconnect: bool
    managed_ops: ManagedOps


def add_local_flags(parser: argparse.ArgumentParser) -> None:
    """The on-server flags shared by ``agent`` and ``wait --local``."""
    parser.add_argument(
        "--rackconnect.region",
        dest="rackconnect_region",
        metavar="REGION",
        help="the server's region (ORD, DFW, IAD, LON, SYD, HKG); default: from XenStore",
    )
    parser.add_argument(
        "--rackconnect.url",
        dest="rackconnect_url",
        metavar="URL",
        help="base URL of the in-server API (default: "
        "https://{region}.api.rackconnect.rackspace.com)",
    )
    parser.add_argument(
        "--rackconnect",
        dest="rackconnect",
        choices=("auto", "true", "false"),
        default="auto",
        help="whether RackConnect automation is expected on this server; auto: true unless "
        "the XenStore roles say otherwise (default: auto)",
    )
    parser.add_argument(
        "--managed",
        choices=("auto", "true", "false"),
        default="auto",
        help="whether this server has Managed Operations, so ready waits for its completion; "
        "auto: from the XenStore roles, else false (default: auto)",
    )
    parser.add_argument(
        "--managed.completion-file",
        dest="completion_file",
        default=default_completion_file(),
        metavar="PATH",
        help="the file Managed Operations creates when done (default: %(default)s)",
    )
    parser.add_argument(
        "--managed.state-file",
        dest="state_file",
        default=default_state_file(),
        metavar="PATH",
        help="where completion is remembered, so a cleared /tmp does not undo it; empty: "
        "remember nothing (default: %(default)s)",
    )
    parser.add_argument(
        "--xenstore.command",
        dest="xenstore_command",
        default=XENSTORE_COMMAND,
        metavar="PATH",
        help="the xenstore-read program (none on Windows: XenStore is then not read) "
        "(default: %(default)s)",
    )


def local_settings(args: argparse.Namespace) -> Local:
    """The on-server settings; raises UsageError when the region cannot be found."""

    def xenstore(key: str) -> str | None:
        return xenstore_read(key, args.xenstore_command)

    region = args.rackconnect_region
    if region is None and args.rackconnect_url:
        region = region_from_url(args.rackconnect_url)
    if region is None:
        region = xenstore("vm-data/provider_data/region")
    if region is None and not args.rackconnect_url:
        raise UsageError("give --rackconnect.region (or --rackconnect.url)")
    region = (region or "").upper()
    roles = None
    if "auto" in (args.managed, args.rackconnect):
        roles = xenstore("vm-data/provider_data/roles")
    managed = args.managed == "true" or (args.managed == "auto" and "rax_managed" in (roles or ""))
    rackconnect = args.rackconnect == "true" or (
        args.rackconnect == "auto" and (roles is None or "rack_connect" in roles)
    )
    return Local(
        region=region,
        url=args.rackconnect_url or default_url(region),
        managed=managed,
        rackconnect=rackconnect,
        managed_ops=ManagedOps(args.completion_file, args.state_file or None, xenstore),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``agent`` flags to a parser."""
    parser.description = (
        "Run on a cloud server: poll the RackConnect in-server API (at most 30 requests a "
        "minute) and Managed Operations (XenStore, the completion file), and serve the "
        "exporter's metrics for this server."
    )
    common.add_web_flags(parser)
    common.add_poll_interval_flag(
        parser,
        "60s",
        "how often to read the in-server API; never more than 30 requests a minute whatever "
        "this says",
    )
    common.add_poll_timeout_flag(parser)
    add_local_flags(parser)
    parser.add_argument(
        "--server.id",
        dest="server_id",
        metavar="ID",
        help="the server_id label (default: from the API, else XenStore, else the host name)",
    )
    parser.add_argument(
        "--server.name",
        dest="server_name",
        metavar="NAME",
        help="the name label (default: the host name)",
    )
    parser.add_argument(
        "--server.generation",
        dest="generation",
        choices=("next", "first"),
        default="next",
        help="the generation label (default: next)",
    )
    parser.add_argument(
        "--account.name",
        dest="account_name",
        default=ACCOUNT,
        metavar="NAME",
        help=f"the account label (default: {ACCOUNT})",
    )
    common.add_log_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Serve the local server's RackConnect and Managed Operations state."""
    common.setup_logging(args)
    local = local_settings(args)
    web = common.web(args)
    if web is None:
        return EXIT_USAGE
    store = Store(args.poll_interval)
    agent = Agent(
        store,
        base_url=local.url,
        region=local.region,
        server_id=args.server_id,
        server_name=args.server_name or socket.gethostname(),
        generation=args.generation,
        managed=local.managed,
        rackconnect=local.rackconnect,
        completion_file=args.completion_file,
        state_file=args.state_file or None,
        xenstore=local.managed_ops.xenstore,
        account=args.account_name,
        timeout=args.poll_timeout,
    )
    interval = args.poll_interval

    def start(httpd: ExporterHTTPServer, stop: threading.Event) -> Callable[[], None]:
        thread = threading.Thread(
            target=agent.run, args=(stop, interval), name="agent", daemon=True
        )
        thread.start()
        logger.info(
            "rackconnect-exporter agent started",
            extra={"version": __version__, "address": httpd.url, "api": agent.api.base_url},
        )

        def stop_agent() -> None:
            thread.join(5)
            agent.close()

        return stop_agent

    return run_server(web, store, start)
