"""The ``agent`` command, run on a cloud server: the RackConnect in-server API and the
Managed Operations completion file, exposed with the exporter's metric names.

The in-server API (``https://{region}.api.rackconnect.rackspace.com/v1/...``) answers for
the calling server only and allows 30 requests a minute; over that it answers 403. Only
the ``automation_status`` JSON key is known from real clients: every other shape is read
in each variant seen (``tasks`` or ``cloud_server_tasks`` with ``name``/``status`` or
``task``/``task_status``; ``gateway_ip`` or ``ip``; features as a list or a flat object).
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from exporter import __version__
from exporter.commands import common
from exporter.commands.lifecycle import run_server
from exporter.errors import BAD_RESPONSE, EXIT_USAGE, RATE_LIMITED, UpstreamError
from exporter.exposition.families import GATEWAY_INFO, TASK_STATUS
from exporter.exposition.render import sample
from exporter.logs import logger
from exporter.model import (
    COMPLETE,
    FEATURE_KEYS,
    NEXT,
    Server,
    normalise_automation_status,
)
from exporter.rackspace.client import ApiClient, check_status, strip_query
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer

ACCOUNT = "local"
RATE_LIMIT = 30  # requests per minute per server, upstream's limit
WINDOW = 60.0
REQUESTS_PER_POLL = 3  # details, features, gateway
LINUX_COMPLETION_FILE = "/tmp/rs_managed_cloud_automation_complete"
WINDOWS_COMPLETION_FILE = r"C:\windows\temp\rs_managed_cloud_automation_complete.txt"
FEATURE_PREFIX = "rackconnect_automation_feature_"


def default_completion_file() -> str:
    """Where Managed Operations leaves its completion file on this platform."""
    return WINDOWS_COMPLETION_FILE if os.name == "nt" else LINUX_COMPLETION_FILE


def default_url(region: str) -> str:
    """The in-server API's base URL for a region."""
    return f"https://{region.lower()}.api.rackconnect.rackspace.com"


class RequestBudget:
    """At most ``limit`` requests in any ``window`` seconds; a 403 blocks a whole window."""

    def __init__(
        self,
        limit: int = RATE_LIMIT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sent: collections.deque[float] = collections.deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def take(self) -> bool:
        """Use one request now, or return False when none is left."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if now < self._blocked_until or len(self._sent) >= self.limit:
                return False
            self._sent.append(now)
            return True

    def block(self) -> None:
        """Upstream said 403: send nothing for a whole window."""
        with self._lock:
            self._blocked_until = self._clock() + self.window

    def wait_for(self, count: int) -> float:
        """Seconds until ``count`` requests may be sent."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            wait = max(0.0, self._blocked_until - now)
            over = len(self._sent) + count - self.limit
            if over > 0:
                wait = max(wait, self._sent[over - 1] + self.window - now)
            return wait


@dataclass(frozen=True)
class Reading:
    """One poll of the in-server API."""

    status: str
    tasks: tuple[tuple[str, str], ...]
    features: tuple[tuple[str, bool], ...]
    gateway_ip: str | None
    server_id: str | None


def _decode(response: requests.Response) -> Any:
    """JSON when the body is JSON, else the trimmed text."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return response.content.decode("utf-8", "replace").strip()


def _first_str(doc: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def parse_status(doc: Any) -> str | None:
    """The automation status from ``{"automation_status": S}``, a JSON string or text."""
    if isinstance(doc, dict):
        value = _first_str(doc, ("automation_status", "status"))
    elif isinstance(doc, str):
        value = doc.strip().strip('"').strip()
    else:
        value = None
    return normalise_automation_status(value) if value else None


def parse_tasks(doc: Any) -> tuple[tuple[str, str], ...]:
    """Task name and status pairs from ``/details``, whatever the array is called."""
    if not isinstance(doc, dict):
        return ()
    items: Any = None
    for key in ("tasks", "cloud_server_tasks", "automation_tasks", "task_statuses"):
        if key in doc:
            items = doc[key]
            break
    else:
        items = next((v for v in doc.values() if isinstance(v, list | dict)), None)
    pairs: list[tuple[str, str]] = []
    if isinstance(items, dict):
        pairs = [(str(k), str(v)) for k, v in items.items() if isinstance(v, str)]
    elif isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                continue
            name = _first_str(item, ("name", "task", "task_name", "description"))
            status = _first_str(item, ("status", "task_status", "state"))
            if name is not None:
                pairs.append((name, status or "UNKNOWN"))
    return tuple(pairs)


def _feature_name(name: str) -> str | None:
    key = name.strip().lower()
    key = key.removeprefix(FEATURE_PREFIX)
    for feature, keys in FEATURE_KEYS.items():
        if key == feature or FEATURE_PREFIX + key in keys:
            return feature
    return None


def parse_features(doc: Any) -> tuple[tuple[str, bool], ...]:
    """Known features and whether each is ENABLED, from a list or a flat object."""
    inner = doc.get("automation_features", doc) if isinstance(doc, dict) else doc
    pairs: list[tuple[str, object]] = []
    if isinstance(inner, dict):
        pairs = list(inner.items())
    elif isinstance(inner, list):
        for item in inner:
            if isinstance(item, dict):
                name = _first_str(item, ("name", "feature"))
                if name is not None:
                    pairs.append((name, item.get("status", item.get("value"))))
    found: dict[str, bool] = {}
    for name, value in pairs:
        feature = _feature_name(str(name))
        if feature is not None and feature not in found:
            found[feature] = value is True or (
                isinstance(value, str) and value.strip().upper() == "ENABLED"
            )
    return tuple((f, found[f]) for f in FEATURE_KEYS if f in found)


def parse_gateway(doc: Any) -> str | None:
    """The gateway IP from ``{"gateway_ip": IP}``, ``{"ip": IP}``, a JSON string or text."""
    if isinstance(doc, dict):
        candidates = [doc.get("gateway_ip"), doc.get("ip"), *doc.values()]
    else:
        candidates = [doc]
    for value in candidates:
        if isinstance(value, str):
            text = value.strip().strip('"').replace(" ", "")
            try:
                return str(ipaddress.ip_address(text))
            except ValueError:
                continue
    return None


def _server_id(*docs: Any) -> str | None:
    for doc in docs:
        if isinstance(doc, dict):
            value = _first_str(doc, ("server_id", "cloud_server_id", "instance_id"))
            if value:
                return value
    return None


class InServerApi:
    """The RackConnect v2.0 in-server API of this server, within the request budget."""

    def __init__(self, base_url: str, client: ApiClient, budget: RequestBudget, region: str):
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._budget = budget
        self._region = region

    def get(self, path: str) -> requests.Response:
        """GET ``/v1/{path}?format=json``; 403 is the rate limit."""
        url = f"{self.base_url}/v1/{path}"
        if not self._budget.take():
            raise UpstreamError(
                RATE_LIMITED, f"GET {url}: holding back to stay under {RATE_LIMIT} requests/minute"
            )
        response = self._client.request(
            "GET", url, api="rackconnect", region=self._region, params={"format": "json"}
        )
        if response.status_code == 403:
            self._budget.block()
            raise UpstreamError(
                RATE_LIMITED, f"GET {strip_query(url)}: HTTP 403 (over the rate limit)", 403
            )
        return response

    def read(self) -> Reading:
        """One reading: status and tasks, features, gateway."""
        details = self.get("automation_status/details")
        check_status(details, "GET", details.url)
        details_doc = _decode(details)
        status = parse_status(details_doc)
        status_doc: Any = None
        if status is None:
            response = self.get("automation_status")
            check_status(response, "GET", response.url)
            status_doc = _decode(response)
            status = parse_status(status_doc)
            if status is None:
                raise UpstreamError(BAD_RESPONSE, f"GET {response.url}: no automation status")
        features_response = self.get("automation_features")
        check_status(features_response, "GET", features_response.url)
        features_doc = _decode(features_response)
        gateway_response = self.get("gateway_ip")
        gateway: str | None = None
        gateway_doc: Any = None
        if gateway_response.status_code != 404:  # 404: not assigned yet
            check_status(gateway_response, "GET", gateway_response.url)
            gateway_doc = _decode(gateway_response)
            gateway = parse_gateway(gateway_doc)
            if gateway is None:
                raise UpstreamError(
                    BAD_RESPONSE, f"GET {strip_query(gateway_response.url)}: no gateway IP"
                )
        return Reading(
            status=status,
            tasks=parse_tasks(details_doc),
            features=parse_features(features_doc),
            gateway_ip=gateway,
            server_id=_server_id(details_doc, status_doc, features_doc, gateway_doc),
        )


def xenstore_read(key: str) -> str | None:
    """A XenStore value inside the VM (``xenstore-read``), or None where there is none."""
    try:
        result = subprocess.run(
            ["xenstore-read", key], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip().strip('"')
    return value if result.returncode == 0 and value else None


_REGION_IN_HOST = re.compile(r"^https?://([a-z]{3})\.api\.rackconnect\.", re.IGNORECASE)


def region_from_url(url: str) -> str | None:
    """``ORD`` from ``https://ord.api.rackconnect.rackspace.com``."""
    match = _REGION_IN_HOST.match(url)
    return match.group(1).upper() if match else None


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
        self.writer = store.open_account(account)
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
            on_response=self.writer.count_request,
        )
        # Every request counts against the upstream limit: the client must not retry on
        # its own. A failed poll is simply tried again at the next interval.
        for prefix in ("http://", "https://"):
            self.client.session.mount(prefix, HTTPAdapter(max_retries=0))
        self.api = InServerApi(base_url, self.client, self.budget, region)
        self.writer.known("", True, managed)

    def poll(self) -> None:
        """One reading, published to the store; never raises."""
        started = time.monotonic()
        try:
            reading = self.api.read()
        except UpstreamError as exc:
            self.writer.failed(self.region, exc.reason, time.monotonic() - started)
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
        self.writer.polled()

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


def xenstore_server_id() -> str | None:
    """The instance UUID from XenStore's ``name`` (``instance-<uuid>``)."""
    name = xenstore_read("name")
    if name and name.startswith("instance-"):
        return name.removeprefix("instance-")
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``agent`` flags to a parser."""
    parser.description = (
        "Run on a cloud server: poll the RackConnect in-server API (at most 30 requests a "
        "minute) and the Managed Operations completion file, and serve the exporter's "
        "metrics for this server."
    )
    common.add_web_flags(parser)
    common.add_poll_interval_flag(
        parser,
        "60s",
        "how often to read the in-server API; never more than 30 requests a minute whatever "
        "this says",
    )
    common.add_poll_timeout_flag(parser)
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
    parser.add_argument(
        "--managed",
        choices=("auto", "true", "false"),
        default="auto",
        help="whether this server has Managed Operations, so ready waits for the completion "
        "file; auto: from the XenStore roles, else false (default: auto)",
    )
    parser.add_argument(
        "--managed.completion-file",
        dest="completion_file",
        default=default_completion_file(),
        metavar="PATH",
        help="the file Managed Operations creates when done (default: %(default)s)",
    )
    common.add_log_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Serve the local server's RackConnect and Managed Operations state."""
    common.setup_logging(args)
    region = args.rackconnect_region
    if region is None and args.rackconnect_url:
        region = region_from_url(args.rackconnect_url)
    if region is None:
        region = xenstore_read("vm-data/provider_data/region")
    if region is None and not args.rackconnect_url:
        print(
            "rackconnect-exporter agent: error: give --rackconnect.region (or --rackconnect.url)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    region = (region or "").upper()
    managed = args.managed == "true"
    if args.managed == "auto":
        managed = "rax_managed" in (xenstore_read("vm-data/provider_data/roles") or "")
    web = common.web(args)
    if web is None:
        return EXIT_USAGE
    store = Store(args.poll_interval)
    agent = Agent(
        store,
        base_url=args.rackconnect_url or default_url(region),
        region=region,
        server_id=args.server_id,
        server_name=args.server_name or socket.gethostname(),
        generation=args.generation,
        managed=managed,
        completion_file=args.completion_file,
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
