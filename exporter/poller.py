"""One polling loop per account: authenticate, list every region, publish to the store."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from exporter.config import AccountConfig
from exporter.identity import MANAGED_ROLE, NEXT_GEN_SERVICE, RACKCONNECT_ROLE
from exporter.identity_v1 import make_identity
from exporter.logs import logger
from exporter.servers import CloudServers
from exporter.servers_v1 import GLOBAL, FirstGenServers
from exporter.snapshot import Store
from exporter.upstream import BAD_RESPONSE, ApiClient, UpstreamError

JITTER = 0.05  # spread polls of many accounts by +-5% of the interval
MAX_REGIONS = 6  # Rackspace has six regions; each gets its own worker


class AccountPoller:
    """Polls one account's regions concurrently and publishes each region's result."""

    def __init__(self, account: AccountConfig, store: Store, timeout: float) -> None:
        self.account = account
        self.store = store
        name = account.name
        self.client = ApiClient(
            timeout,
            on_response=lambda api, region, code: store.count_request(name, region, api, code),
        )
        self.identity = make_identity(self.client, account)
        self.servers = CloudServers(self.client, self.identity)
        self.first_gen = FirstGenServers(self.client, self.identity)
        self._pool = ThreadPoolExecutor(MAX_REGIONS, thread_name_prefix=f"poll-{name}")

    def poll(self) -> None:
        """Poll every region once; never raises."""
        name = self.account.name
        started = time.monotonic()
        try:
            access = self.identity.access()
        except UpstreamError as exc:
            for region in self.store.regions(name) or [""]:
                self._failed(region, exc.reason, str(exc), time.monotonic() - started)
            self.store.account_polled(name)
            return
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
        for future in [self._pool.submit(self._poll_region, r) for r in regions]:
            future.result()
        self.store.account_polled(name)

    def _poll_region(self, region: str) -> None:
        started = time.monotonic()
        try:
            if region == GLOBAL:
                servers = self.first_gen.list_servers()
            else:
                servers = self.servers.list_servers(region)
        except UpstreamError as exc:
            self._failed(region, exc.reason, str(exc), time.monotonic() - started)
            return
        except Exception as exc:  # a bug must not stop polling; report it as bad data
            logger.error(
                "unexpected error while polling",
                exc_info=exc,
                extra={"account": self.account.name, "region": region},
            )
            self.store.region_failed(
                self.account.name, region, BAD_RESPONSE, time.monotonic() - started
            )
            return
        duration = time.monotonic() - started
        self.store.region_succeeded(self.account.name, region, servers, duration)
        logger.debug(
            "poll succeeded",
            extra={
                "account": self.account.name,
                "region": region,
                "servers": len(servers),
                "duration": f"{duration:.3f}s",
            },
        )

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

    def run(self, stop: threading.Event, interval: float) -> None:
        """Poll now, then every ``interval`` seconds (with jitter) until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # the loop must survive anything
                logger.error(
                    "unexpected error in the polling loop",
                    exc_info=exc,
                    extra={"account": self.account.name},
                )
            stop.wait(interval * random.uniform(1 - JITTER, 1 + JITTER))

    def close(self) -> None:
        """Stop the region workers and release connections."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


class Poller:
    """Runs every account's loop in its own thread."""

    def __init__(
        self, accounts: list[AccountConfig], store: Store, interval: float, timeout: float
    ):
        self.interval = interval
        self.pollers = [AccountPoller(a, store, timeout) for a in accounts]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start one daemon thread per account; the first poll begins at once."""
        for p in self.pollers:
            thread = threading.Thread(
                target=p.run,
                args=(self._stop, self.interval),
                name=f"account-{p.account.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every loop to stop and wait a little for them."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for p in self.pollers:
            p.close()
