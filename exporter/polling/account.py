"""Polling: authenticate each account, list its regions, publish each region to the store.

``AccountPoller`` polls one account; ``Poller`` runs every account's regions on their own
timers through one bounded pool (see ``exporter.scheduler``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from exporter.config import AccountConfig
from exporter.errors import BAD_RESPONSE, RATE_LIMITED, UpstreamError
from exporter.logs import logger
from exporter.polling.incremental import DEFAULT_FULL_EVERY, Lister, RegionSync
from exporter.polling.ratelimit import DEFAULT_PER_MINUTE, TokenBucket
from exporter.polling.scheduler import DEFAULT_WORKERS, Scheduler
from exporter.rackspace import cloudservers as servers_api
from exporter.rackspace.client import ApiClient
from exporter.rackspace.cloudservers import GLOBAL, CloudServers
from exporter.rackspace.identity import (
    MANAGED_ROLE,
    NEXT_GEN_SERVICE,
    RACKCONNECT_ROLE,
    make_identity,
)
from exporter.store import Store

MAX_REGIONS = 6  # Rackspace has six regions; a one-off poll gives each its own worker


class AccountPoller:
    """Polls one account's regions and publishes each region's result on its own."""

    def __init__(
        self,
        account: AccountConfig,
        store: Store,
        timeout: float,
        *,
        full_every: int = DEFAULT_FULL_EVERY,
        requests_per_minute: float = DEFAULT_PER_MINUTE,
    ) -> None:
        self.account = account
        self.store = store
        self.full_every = full_every
        name = account.name
        self.bucket = TokenBucket(requests_per_minute)
        self.client = ApiClient(
            timeout,
            on_response=lambda api, region, code: store.count_request(name, region, api, code),
            throttle=self.bucket.acquire,
        )
        self.identity = make_identity(self.client, account)
        self.servers = CloudServers(self.client, self.identity)
        self.first_gen = CloudServers(self.client, self.identity)
        self._syncs: dict[str, RegionSync] = {}
        self._pool = ThreadPoolExecutor(MAX_REGIONS, thread_name_prefix=f"poll-{name}")

    def poll(self) -> None:
        """Poll every region once, in parallel, and wait for them; never raises."""
        started = time.monotonic()
        try:
            regions = self.authenticate()
        except UpstreamError as exc:
            self.auth_failed(exc, time.monotonic() - started)
            self.store.account_polled(self.account.name)
            return
        for future in [self._pool.submit(self.poll_region, r) for r in regions]:
            future.result()
        self.store.account_polled(self.account.name)

    def authenticate(self) -> tuple[str, ...]:
        """Authenticate, record the account's facts and return the regions to poll.

        Raises UpstreamError when Identity fails.
        """
        access = self.identity.access()
        name = self.account.name
        rackconnect = self.account.rackconnect
        if rackconnect is None:
            rackconnect = RACKCONNECT_ROLE in access.roles
        managed = self.account.managed
        if managed is None:
            managed = MANAGED_ROLE in access.roles
        self.store.account_known(name, access.tenant_id, rackconnect, managed)
        # A region that drops out of the catalog is reported as failing, not left as it was.
        known = set(self.store.regions(name)) - {GLOBAL}
        regions = self.account.regions or tuple(
            sorted(set(access.region_urls(NEXT_GEN_SERVICE)) | known)
        )
        if "next" not in self.account.generations:
            regions = ()
        if "first" in self.account.generations:
            regions += (GLOBAL,)
        if not regions:
            logger.warning(
                "no Cloud Servers region in the service catalog", extra={"account": name}
            )
        return regions

    def auth_failed(self, exc: UpstreamError, duration: float) -> None:
        """Report a failed authentication on every known region (or region "")."""
        for region in self.store.regions(self.account.name) or [""]:
            self._failed(region, exc.reason, str(exc), duration)

    def lister(self, region: str) -> Lister:
        """What lists ``region``: first-generation servers live in GLOBAL."""
        return self.first_gen if region == GLOBAL else self.servers

    def poll_region(self, region: str) -> float | None:
        """Poll one region and publish the result; never raises.

        Returns how many seconds upstream asked to wait when it rate-limited the poll.
        """
        name = self.account.name
        sync = self._syncs.get(region)
        if sync is None:
            sync = self._syncs[region] = RegionSync(self.full_every)
        since = sync.changes_since(time.time())
        started = time.monotonic()
        try:
            listing = self.lister(region).list_region(region, since)
            if since is not None:
                size = self.store.merged_size(name, region, listing.servers, listing.deleted)
                if size > servers_api.MAX_SERVERS:
                    raise UpstreamError(
                        BAD_RESPONSE,
                        f"GET {region} servers: more than {servers_api.MAX_SERVERS} servers "
                        "with these changes, the most one account and region may have; "
                        "the changes are not used",
                    )
        except UpstreamError as exc:
            self._failed(region, exc.reason, str(exc), time.monotonic() - started)
            return exc.retry_after if exc.reason == RATE_LIMITED else None
        except Exception as exc:  # a bug must not stop polling; report it as bad data
            logger.error(
                "unexpected error while polling",
                exc_info=exc,
                extra={"account": name, "region": region},
            )
            self.store.region_failed(name, region, BAD_RESPONSE, time.monotonic() - started)
            return None
        duration = time.monotonic() - started
        if since is None:
            self.store.region_succeeded(name, region, listing.servers, duration)
        else:
            self.store.region_merged(name, region, listing.servers, listing.deleted, duration)
        sync.succeeded(listing, full=since is None, now=time.time())
        logger.debug(
            "poll succeeded",
            extra={
                "account": name,
                "region": region,
                "listing": "full" if since is None else "changes",
                "servers": len(listing.servers),
                "deleted": len(listing.deleted),
                "requests": listing.requests,
                "duration": f"{duration:.3f}s",
            },
        )
        return None

    def _failed(self, region: str, reason: str, message: str, duration: float) -> None:
        self.store.region_failed(self.account.name, region, reason, duration)
        logger.warning(
            "poll failed",
            extra={
                "account": self.account.name,
                "region": region,
                "reason": reason,
                "err": message,
            },
        )

    def close(self) -> None:
        """Stop the region workers and release connections."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


class Poller:
    """Polls every account's regions on their own timers, through one bounded pool."""

    def __init__(
        self,
        accounts: list[AccountConfig],
        store: Store,
        interval: float,
        timeout: float,
        *,
        full_every: int = DEFAULT_FULL_EVERY,
        requests_per_minute: float = DEFAULT_PER_MINUTE,
        workers: int | None = None,
    ):
        self.interval = interval
        self.pollers = [
            AccountPoller(
                a, store, timeout, full_every=full_every, requests_per_minute=requests_per_minute
            )
            for a in accounts
        ]
        self.scheduler = Scheduler(self.pollers, interval, workers or DEFAULT_WORKERS)

    def start(self) -> None:
        """Start polling; the first poll of every account begins at once."""
        self.scheduler.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop scheduling, wait a little for running polls, release connections."""
        self.scheduler.stop(timeout)
        for p in self.pollers:
            p.close()
