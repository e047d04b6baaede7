"""One account's poller: authenticate, list a region, publish it through the account's writer.

The supervisor decides when each of these runs; this module only does the work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from exporter.config import AccountConfig
from exporter.errors import BAD_RESPONSE, RATE_LIMITED, UpstreamError
from exporter.logs import format_exception, logger
from exporter.polling.incremental import DEFAULT_FULL_EVERY, RegionRecords, RegionSync
from exporter.polling.rackconnect_v3 import RegionV3
from exporter.polling.ratelimit import DEFAULT_PER_MINUTE, TokenBucket
from exporter.rackspace.client import ApiClient
from exporter.rackspace.cloudservers import GLOBAL, CloudServers
from exporter.rackspace.identity import (
    NEXT_GEN_SERVICE,
    Access,
    automation,
    make_token_cache,
)
from exporter.store import AccountWriter


@dataclass
class _Region:
    """What the poller knows of one region: when to list it in full, and its records."""

    sync: RegionSync
    records: RegionRecords
    v3: RegionV3 | None = None  # RackConnect v3.0, in a v3.0 region


class AccountPoller:
    """Polls one account's regions and publishes each region's result on its own.

    ``regions`` are those an earlier poller of the account reported, which the store
    still shows: a region that leaves the catalog is then reported as failing.
    """

    def __init__(
        self,
        account: AccountConfig,
        writer: AccountWriter,
        timeout: float,
        *,
        full_every: int = DEFAULT_FULL_EVERY,
        requests_per_minute: float = DEFAULT_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        regions: Iterable[str] = (),
    ) -> None:
        self.account = account
        self.writer = writer
        self.full_every = full_every
        self.clock = clock
        self.wall = wall
        self.bucket = TokenBucket(requests_per_minute)
        self.client = ApiClient(
            timeout, on_response=writer.count_request, throttle=self.bucket.acquire
        )
        self.tokens = make_token_cache(self.client, account)
        self.servers = CloudServers(
            self.client, self.tokens, metadata_labels=account.metadata_labels
        )
        self._regions: dict[str, _Region] = {}
        self._reported = {r for r in regions if r}  # the regions the store shows
        self._lock = threading.Lock()

    @property
    def regions(self) -> list[str]:
        """The regions this poller (or the one before it) reported, sorted."""
        with self._lock:
            return sorted(self._reported)

    def authenticate(self) -> tuple[str, ...]:
        """Authenticate, record the account's facts and return the regions to poll.

        Raises UpstreamError when Identity fails.
        """
        access = self.tokens.access()
        name = self.account.name
        rackconnect, managed = automation(self.account, access)
        self.writer.known(
            access.tenant_id,
            rackconnect,
            managed,
            access.v2_regions(self.account),
            access.v3_regions(self.account),
        )
        # A region that drops out of the catalog is reported as failing, not left as it was.
        known = set(self.regions) - {GLOBAL}
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
        for region in self.regions or [""]:
            self._failed(region, exc.reason, format_exception(exc), duration)

    def poll_region(self, region: str) -> float | None:
        """Poll one region and publish the result; never raises.

        Returns how many seconds upstream asked to wait when it rate-limited the poll.
        """
        name = self.account.name
        state = self._regions.get(region)
        if state is None:
            state = self._regions[region] = _Region(
                RegionSync(self.full_every, name=region), RegionRecords(region)
            )
        since = state.sync.changes_since(self.wall())
        started = self.clock()
        with self._lock:  # regions are polled in parallel
            self._reported.add(region)
        try:
            listing = self.servers.list_region(region, since, state.records.known)
            servers = state.records.apply(listing)
            access = self.tokens.access()
            v3 = self._v3(region, state, access)
            if v3 is not None:
                v3.read(self.client, access.rackconnect_v3.get(region), self.tokens)
                servers = v3.attach(servers)
        except UpstreamError as exc:
            self._failed(region, exc.reason, format_exception(exc), self.clock() - started)
            return exc.retry_after if exc.reason == RATE_LIMITED else None
        except Exception as exc:  # a bug must not stop polling; report it as bad data
            logger.error(
                "unexpected error while polling",
                exc_info=exc,
                extra={"account": name, "region": region},
            )
            self.writer.failed(region, BAD_RESPONSE, self.clock() - started)
            return None
        duration = self.clock() - started
        self.writer.succeeded(region, servers, duration, None if v3 is None else v3.poll())
        state.sync.succeeded(listing, full=since is None, now=self.wall())
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
        return None if v3 is None else v3.retry_after

    def _v3(self, region: str, state: _Region, access: Access) -> RegionV3 | None:
        """The region's v3.0 state when it is a v3.0 region (it may become one or stop)."""
        if region not in access.v3_regions(self.account):
            state.v3 = None
        elif state.v3 is None:
            state.v3 = RegionV3(self.account.name, region)
        return state.v3

    def list_in_full_next(self) -> None:
        """Make the next poll of every region a full listing."""
        for state in list(self._regions.values()):
            state.sync.reset()

    def _failed(self, region: str, reason: str, message: str, duration: float) -> None:
        self.writer.failed(region, reason, duration)
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
        """Release connections."""
        self.client.close()
