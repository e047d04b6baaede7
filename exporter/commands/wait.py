"""The ``wait`` command: poll one server until it is ready, has failed, or time is up.

Only that server is read (``GET /servers/{id}``), never the whole fleet. What "ready"
means is the rule behind ``rackconnect_server_ready``; ``--for rackconnect`` and
``--for managed`` wait for one half of it. Terminal failures end the wait at once:
RackConnect ``FAILED`` or ``UNPROCESSABLE`` (the server will not be RackConnected, so
``--for ready`` and ``--for rackconnect`` can never succeed), Managed Operations
``Build Error`` or ``Authentication Error``, a server in status ``ERROR``, and a server
deleted while waited for.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from exporter.commands import common
from exporter.config import AccountConfig, Config
from exporter.errors import (
    AUTH,
    BAD_RESPONSE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    ExporterError,
    UpstreamError,
)
from exporter.flags import format_duration
from exporter.model import (
    AUTOMATION_FAILURES,
    FIRST,
    MANAGED_FAILURES,
    NEXT,
    Server,
)
from exporter.rackspace.client import ApiClient
from exporter.rackspace.cloudservers import GLOBAL, CloudServers
from exporter.rackspace.identity import (
    FIRST_GEN_SERVICE,
    MANAGED_ROLE,
    NEXT_GEN_SERVICE,
    RACKCONNECT_ROLE,
    make_identity,
)

TARGETS = ("rackconnect", "managed", "ready")
BACKOFF = 1.5
MAX_INTERVAL = 60.0
# Nova statuses after which automation will never run.
BROKEN_STATUSES = frozenset({"ERROR", "DELETED"})

DONE = {
    "ready": "ready",
    "rackconnect": "RackConnect automation done",
    "managed": "Managed Operations automation done",
}

Fetch = Callable[[], dict[str, Any]]


class WaitError(ExporterError):
    """The wait cannot go on; ``code`` is the exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """Where the server lives and how to read it."""

    account: str
    region: str
    generation: str
    rackconnect: bool
    managed: bool
    fetch: Fetch


@dataclass(frozen=True)
class State:
    """What one read of the server said."""

    status: str
    rackconnect: str | None
    managed: str | None
    ready: bool

    def describe(self) -> str:
        """``status=ACTIVE rackconnect=DEPLOYED managed=Pending ready=no``."""
        return (
            f"status={self.status or '-'} rackconnect={self.rackconnect or '-'} "
            f"managed={self.managed or '-'} ready={'yes' if self.ready else 'no'}"
        )


def judge(server: Server, status: str, target: Target, wanted: str) -> tuple[bool, str | None]:
    """(done, failure): whether ``wanted`` is reached, or why it never will be."""
    rc_wanted = wanted in ("rackconnect", "ready")
    mo_wanted = wanted in ("managed", "ready")
    if status.upper() in BROKEN_STATUSES:
        return False, f"the server is in status {status.upper()}"
    if rc_wanted and server.automation_status in AUTOMATION_FAILURES:
        return False, f"RackConnect automation is {server.automation_status}"
    if mo_wanted and server.managed_status in MANAGED_FAILURES:
        return False, f"Managed Operations automation is {server.managed_status}"
    done = (not rc_wanted or server.rackconnect_done(target.rackconnect)) and (
        not mo_wanted or server.managed_done(target.managed)
    )
    return done, None


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Waiter:
    """Finds the server once, then polls it with backoff until a verdict."""

    def __init__(
        self,
        config: Config,
        server_id: str,
        *,
        wanted: str = "ready",
        region: str | None = None,
        account: str | None = None,
        interval: float = 5.0,
        timeout: float = 1800.0,
        request_timeout: float = 30.0,
        out: TextIO,
        err: TextIO,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.server_id = server_id
        self.wanted = wanted
        self.region = region.upper() if region else None
        self.account = account
        self.interval = interval
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.out = out
        self.err = err
        self.sleep = sleep
        self._clients: list[ApiClient] = []

    def run(self) -> int:
        """Wait; return the exit code."""
        deadline = time.monotonic() + self.timeout
        try:
            target = self._locate(deadline)
            if target is None:
                return self._timed_out(None)
            return self._poll(target, deadline)
        except WaitError as exc:
            print(f"wait: {exc}", file=self.err, flush=True)
            return exc.code
        finally:
            for client in self._clients:
                client.close()

    def _say(self, line: str) -> None:
        print(f"{_stamp()} {line}", file=self.out, flush=True)

    def _timed_out(self, state: State | None, where: str | None = None) -> int:
        after = format_duration(self.timeout)
        if state is None:
            self._say(f"server {self.server_id}: timed out after {after} before it was found")
        else:
            self._say(f"{where}: timed out after {after}: {state.describe()}")
        return EXIT_TIMEOUT

    # --- finding the server ----------------------------------------------------------

    def _accounts(self) -> list[AccountConfig]:
        accounts = list(self.config.accounts)
        if self.account is not None:
            accounts = [a for a in accounts if a.name == self.account]
            if not accounts:
                names = ", ".join(a.name for a in self.config.accounts)
                raise WaitError(EXIT_USAGE, f"no account {self.account!r} (configured: {names})")
        return accounts

    def _locate(self, deadline: float) -> Target | None:
        """Search each account's regions once; regions that failed are asked again."""
        pending: list[tuple[AccountConfig, str | None]] = [(a, None) for a in self._accounts()]
        searched: list[str] = []
        auth_errors: list[str] = []
        delay = self.interval
        while True:
            retry: list[tuple[AccountConfig, str | None]] = []
            for account, only_region in pending:
                try:
                    found = self._search(account, only_region, searched, retry)
                except UpstreamError as exc:
                    if exc.reason == AUTH:
                        auth_errors.append(f"{account.name}: {exc}")
                    else:
                        print(f"wait: {account.name}: {exc}; retrying", file=self.err, flush=True)
                        retry.append((account, only_region))
                    continue
                if found is not None:
                    return found
            if not retry:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sleep(min(delay, remaining))
            delay = min(delay * BACKOFF, max(MAX_INTERVAL, self.interval))
            pending = retry
        failed = "authentication failed: " + "; ".join(auth_errors)
        if auth_errors and not searched:
            raise WaitError(EXIT_USAGE, failed)
        where = ", ".join(searched) or "no region"
        message = f"server {self.server_id} not found (searched {where})"
        raise WaitError(EXIT_USAGE, f"{message}; {failed}" if auth_errors else message)

    def _search(
        self,
        account: AccountConfig,
        only_region: str | None,
        searched: list[str],
        retry: list[tuple[AccountConfig, str | None]],
    ) -> Target | None:
        client = ApiClient(self.request_timeout)
        self._clients.append(client)
        identity = make_identity(client, account)
        access = identity.access()
        rackconnect = account.rackconnect
        if rackconnect is None:
            rackconnect = RACKCONNECT_ROLE in access.roles
        managed = account.managed
        if managed is None:
            managed = MANAGED_ROLE in access.roles
        next_urls = access.region_urls(NEXT_GEN_SERVICE)
        first_url = access.region_urls(FIRST_GEN_SERVICE).get("")
        if only_region is not None:
            regions = [only_region]
        elif self.region is not None:
            regions = [self.region]
            if self.region != GLOBAL and self.region not in next_urls:
                raise WaitError(
                    EXIT_USAGE,
                    f"{account.name}: region {self.region} is not in the service catalog "
                    f"(it has {', '.join(sorted(next_urls)) or 'none'})",
                )
            if self.region == GLOBAL and not first_url:
                raise WaitError(
                    EXIT_USAGE, f"{account.name}: no first-generation Cloud Servers endpoint"
                )
        else:
            regions = [r for r in (account.regions or sorted(next_urls)) if r in next_urls]
            # First-generation ids are integers; next-generation ids are UUIDs.
            if first_url and self.server_id.isdigit():
                regions.insert(0, GLOBAL)
        servers = CloudServers(client, identity)
        for region in regions:

            def fetch(region: str = region) -> dict[str, Any]:
                return servers.get_server(region, self.server_id)

            try:
                fetch()
            except UpstreamError as exc:
                if exc.status == 404:
                    searched.append(f"{account.name}/{region}")
                    continue
                if exc.reason == AUTH:
                    raise
                print(f"wait: {account.name}/{region}: {exc}; retrying", file=self.err, flush=True)
                retry.append((account, region))
                continue
            return Target(
                account=account.name,
                region=region,
                generation=FIRST if region == GLOBAL else NEXT,
                rackconnect=rackconnect,
                managed=managed,
                fetch=fetch,
            )
        return None

    # --- polling it ------------------------------------------------------------------

    def _poll(self, target: Target, deadline: float) -> int:
        last: State | None = None
        delay = self.interval
        where = f"{target.account}/{target.region} server {self.server_id}"
        while True:
            pause = delay
            try:
                doc = target.fetch()
            except UpstreamError as exc:
                if exc.status == 404:
                    self._say(f"{where}: failed: the server no longer exists")
                    return EXIT_FAILURE
                if exc.reason == AUTH:
                    raise WaitError(EXIT_USAGE, f"{where}: {exc}") from exc
                print(f"wait: {where}: {exc}; retrying", file=self.err, flush=True)
                if exc.retry_after is not None:
                    pause = max(pause, exc.retry_after)
            else:
                try:
                    server = Server.from_api(doc, target.generation)
                except ValueError as exc:
                    raise WaitError(EXIT_USAGE, f"{where}: {BAD_RESPONSE}: {exc}") from exc
                raw_status = doc.get("status")
                status = raw_status if isinstance(raw_status, str) else ""
                done, failure = judge(server, status, target, self.wanted)
                state = State(
                    status=status,
                    rackconnect=server.automation_status,
                    managed=server.managed_status,
                    ready=server.ready(target.rackconnect, target.managed),
                )
                if state != last:
                    name = f" ({server.name})" if server.name else ""
                    self._say(f"{where}{name}: {state.describe()}")
                    last = state
                    delay = pause = self.interval  # something moved: look again soon
                if failure is not None:
                    self._say(f"{where}: failed: {failure}")
                    return EXIT_FAILURE
                if done:
                    self._say(f"{where}: {DONE[self.wanted]}")
                    return EXIT_OK
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._timed_out(last, where)
            self.sleep(min(pause, remaining))
            delay = min(delay * BACKOFF, max(MAX_INTERVAL, self.interval))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``wait`` flags to a parser."""
    parser.description = (
        "Poll one server until it is ready. Exit codes: 0 ready, 1 a terminal failure "
        "(FAILED, UNPROCESSABLE, Build Error, Authentication Error, status ERROR, deleted), "
        "2 timeout, 3 usage, configuration or authentication error, or server not found."
    )
    parser.add_argument("server_id", metavar="SERVER_ID", help="the server's id")
    parser.add_argument(
        "--for",
        dest="wait_for",
        choices=TARGETS,
        default="ready",
        help="what to wait for: RackConnect automation, Managed Operations, or both "
        "(the rackconnect_server_ready rule) (default: ready)",
    )
    parser.add_argument(
        "--region",
        metavar="REGION",
        help="the server's region (GLOBAL for first generation); default: search every "
        "region of the account once",
    )
    parser.add_argument(
        "--account", metavar="NAME", help="only this configured account (default: every one)"
    )
    parser.add_argument(
        "--interval",
        type=common.duration,
        default=common.duration("5s"),
        metavar="DURATION",
        help="first pause between polls; it grows x1.5 up to 60s and starts again at each "
        "change (default: 5s)",
    )
    parser.add_argument(
        "--timeout",
        type=common.duration,
        default=common.duration("30m"),
        metavar="DURATION",
        help="give up (exit 2) after this long (default: 30m)",
    )
    common.add_config_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Block until one server is ready; the exit code says how it ended."""
    config = common.configure(args)
    if config is None:
        return EXIT_USAGE
    waiter = Waiter(
        config,
        args.server_id,
        wanted=args.wait_for,
        region=args.region,
        account=args.account,
        interval=args.interval,
        timeout=args.timeout,
        request_timeout=args.poll_timeout,
        out=sys.stdout,
        err=sys.stderr,
    )
    try:
        return waiter.run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
