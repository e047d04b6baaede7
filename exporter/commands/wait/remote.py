"""``wait SERVER_ID``: poll one server through the Cloud Servers API until a verdict.

Only that server is read (``GET /servers/{id}``), never the whole fleet. Right after a
create Nova may answer 404 for a while: the search goes on for ``not_found_grace``. Once
seen, a 404 means deleted only when a second read confirms it. What "ready"
means is the rule behind ``rackconnect_server_ready``; ``--for rackconnect`` and
``--for managed`` wait for one half of it. Terminal failures end the wait at once:
RackConnect ``FAILED`` or ``UNPROCESSABLE`` (the server will not be RackConnected, so
``--for ready`` and ``--for rackconnect`` can never succeed), Managed Operations
``Build Error`` or ``Authentication Error``, a server in status ``ERROR``, and a server
deleted while waited for. Outside its declared RackConnect regions UNPROCESSABLE is expected
and counts as done.

On a RackConnect v3.0 region each read also asks the v3.0 API for the server's public IPs
and pool memberships (``exporter.rackconnect_v3_state`` judges them); v2.0 metadata is not
expected there unless the configuration says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from exporter.commands.wait.loop import BACKOFF, Read, Subject, Watcher
from exporter.commands.wait.verdict import WaitError
from exporter.config import AccountConfig, Config
from exporter.durations import format_duration
from exporter.errors import (
    AUTH,
    BAD_RESPONSE,
    EXIT_USAGE,
    UpstreamError,
)
from exporter.model import (
    FIRST,
    NEXT,
    Server,
    rackconnect_expected,
)
from exporter.rackconnect_v3_state import V3State
from exporter.rackspace.client import ApiClient
from exporter.rackspace.cloudservers import GLOBAL, CloudServers
from exporter.rackspace.identity import (
    FIRST_GEN_SERVICE,
    NEXT_GEN_SERVICE,
    Access,
    automation,
    make_token_cache,
)
from exporter.rackspace.rackconnect_v3 import ServerState, Tokens, fetch_server

MAX_INTERVAL = 60.0
NOT_FOUND_GRACE = 120.0

Fetch = Callable[[], dict[str, Any]]
FetchV3 = Callable[[], ServerState]


@dataclass(frozen=True)
class Target:
    """Where the server lives and how to read it."""

    account: str
    region: str
    generation: str
    rackconnect: bool
    managed: bool
    fetch: Fetch
    fetch_v3: FetchV3 | None = None  # on a RackConnect v3.0 region: the server's resources


class Waiter(Watcher):
    """Finds the server (for up to ``not_found_grace``), then polls it until a verdict."""

    def __init__(
        self,
        config: Config,
        server_id: str,
        *,
        region: str | None = None,
        account: str | None = None,
        not_found_grace: float = NOT_FOUND_GRACE,
        **pacing: Any,
    ) -> None:
        pacing.setdefault("max_interval", MAX_INTERVAL)  # wanted, timing, output, clock
        super().__init__(**pacing)
        self.config = config
        self.server_id = server_id
        self.region = region.upper() if region else None
        self.account = account
        self.not_found_grace = not_found_grace
        self.name = f"server {server_id}"
        self.ident = {"server_id": server_id}
        self._clients: list[ApiClient] = []

    def run(self) -> int:
        """Wait; return the exit code."""
        deadline = self.clock() + self.timeout
        try:
            target = self._locate(deadline)
            if target is None:
                return self.timed_out(None, self.name)
            return self.watch(self._subject(target), deadline)
        except WaitError as exc:
            if self.report.output == "json":
                self.outcome("error", exc.code, str(exc))
            print(f"wait: {exc}", file=self.report.err, flush=True)
            return exc.code
        finally:
            for client in self._clients:
                client.close()

    def _pause(self, seconds: float, deadline: float, what: str, **fields: Any) -> None:
        """Sleep ``seconds`` (not past the deadline), with progress lines on the way."""
        self.report.pause(self.sleep, min(seconds, deadline - self.clock()), what, **fields)

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
        accounts = self._accounts()
        pending: list[tuple[AccountConfig, str | None]] = [(a, None) for a in accounts]
        searched: list[str] = []
        auth_errors: list[str] = []
        auth_failed: set[str] = set()
        delay = self.interval
        grace_end = self.clock() + self.not_found_grace
        while True:
            retry: list[tuple[AccountConfig, str | None]] = []
            for account, only_region in pending:
                try:
                    found = self._search(account, only_region, searched, retry)
                except UpstreamError as exc:
                    if exc.reason == AUTH:
                        auth_errors.append(f"{account.name}: {exc}")
                        auth_failed.add(account.name)
                    else:
                        self.report.retry(f"{account.name}: {exc}; retrying")
                        retry.append((account, only_region))
                    continue
                if found is not None:
                    return found
            # Not found anywhere yet: Nova may not show a new server for a while.
            if not retry and searched and self.clock() < grace_end:
                retry = [(a, None) for a in accounts if a.name not in auth_failed]
                searched, auth_errors = [], []
            if not retry:
                break
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            self._pause(
                min(delay, remaining),
                deadline,
                f"server {self.server_id}: not found yet",
                server_id=self.server_id,
            )
            delay = min(delay * BACKOFF, self.max_interval)
            pending = retry
        failed = "authentication failed: " + "; ".join(auth_errors)
        if auth_errors and not searched:
            raise WaitError(EXIT_USAGE, failed)
        where = ", ".join(searched) or "no region"
        message = (
            f"server {self.server_id} not found after "
            f"{format_duration(self.not_found_grace)} (searched {where})"
        )
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
        tokens = make_token_cache(client, account)
        access = tokens.access()
        rackconnect, managed = automation(account, access)
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
        servers = CloudServers(client, tokens)
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
                self.report.retry(f"{account.name}/{region}: {exc}; retrying")
                retry.append((account, region))
                continue
            v3_regions = access.v3_regions(account)
            return Target(
                account=account.name,
                region=region,
                generation=FIRST if region == GLOBAL else NEXT,
                rackconnect=rackconnect_expected(rackconnect, access.v2_regions(account), region),
                managed=managed,
                fetch=fetch,
                fetch_v3=self._v3_reader(
                    account.name, region, v3_regions, access=access, client=client, tokens=tokens
                ),
            )
        return None

    def _v3_reader(
        self,
        account: str,
        region: str,
        v3_regions: tuple[str, ...],
        *,
        access: Access,
        client: ApiClient,
        tokens: Tokens,
    ) -> FetchV3 | None:
        """How to read the server's v3.0 resources, when RackConnect is waited for there."""
        if region not in v3_regions:
            if self.require_public_ip:
                raise WaitError(
                    EXIT_USAGE,
                    f"{account}/{region}: --require-public-ip: {region} is not a "
                    f"RackConnect v3.0 region of {account}",
                )
            return None
        if self.wanted == "managed":
            return None
        base = access.rackconnect_v3.get(region)
        if base is None:
            raise WaitError(
                EXIT_USAGE,
                f"{account}: rackconnect_v3 names {region}, but the service catalog has no "
                f"RackConnect v3.0 (rax:rackconnect) endpoint there",
            )
        return partial(fetch_server, client, base, tokens, region, self.server_id)

    # --- watching it ------------------------------------------------------------------

    def _subject(self, target: Target) -> Subject:
        where = f"{target.account}/{target.region} server {self.server_id}"
        fields = {"server_id": self.server_id, "account": target.account, "region": target.region}
        missing = False  # the last read was a 404, not yet confirmed

        def read() -> Read:
            nonlocal missing
            try:
                doc = target.fetch()
            except UpstreamError as exc:
                if exc.status == 404 and missing:
                    return Read(gone="the server no longer exists")
                if exc.status == 404:
                    # One 404 is not a deletion: read again before saying so.
                    missing = True
                    self.report.retry(f"{where}: not found; reading it again to confirm")
                    return Read(soon=True)
                if exc.reason == AUTH:
                    raise WaitError(EXIT_USAGE, f"{where}: {exc}") from exc
                self.report.retry(f"{where}: {exc}; retrying")
                return Read(not_before=exc.retry_after or 0.0)
            missing = False
            try:
                server = Server.from_api(doc, target.generation)
            except ValueError as exc:
                raise WaitError(EXIT_USAGE, f"{where}: {BAD_RESPONSE}: {exc}") from exc
            v3 = None
            if target.fetch_v3 is not None:
                try:
                    v3 = V3State.of(target.fetch_v3())
                except UpstreamError as exc:
                    # Like a failed Cloud Servers read: nothing to judge, try again later.
                    if exc.reason == AUTH:
                        raise WaitError(EXIT_USAGE, f"{where}: RackConnect v3.0: {exc}") from exc
                    self.report.retry(f"{where}: RackConnect v3.0: {exc}; retrying")
                    return Read(not_before=exc.retry_after or 0.0)
            status = doc.get("status")
            return Read(server, status if isinstance(status, str) else "", v3=v3)

        return Subject(where, fields, target.rackconnect, target.managed, read)
