"""The fleet as scrapes see it: immutable snapshots, swapped atomically by the pollers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.bodies import Body, Part
from exporter.errors import REASONS
from exporter.exposition import AccountFacts, Family, RegionHealth, RegionRenderer, render_parts
from exporter.model import Server


@dataclass(frozen=True)
class RegionView:
    """One account and region, as of the last poll."""

    region: str
    up: bool
    last_success: float | None
    duration: float | None
    last_error: str | None
    servers: tuple[Server, ...]


@dataclass(frozen=True)
class AccountView:
    """One account, as of the last poll of each of its regions."""

    name: str
    tenant_id: str
    rackconnect: bool
    managed: bool
    known: bool  # Identity answered at least once, so tenant and roles are real
    polled: bool  # the first poll has finished (successfully or not)
    regions: tuple[RegionView, ...]


class Snapshot:
    """A complete state of every account, with its exposition built once."""

    def __init__(self, accounts: tuple[AccountView, ...], text: Body, openmetrics: Body) -> None:
        self.accounts = accounts
        self.published = time.time()
        self._bodies = {False: text, True: openmetrics}

    @property
    def ready(self) -> bool:
        """True once every account has finished its first poll."""
        return all(a.polled for a in self.accounts)

    def parts(self, openmetrics: bool = False, compressed: bool = False) -> list[bytes]:
        """The exposition to send, as byte strings in order; gzip is already computed."""
        return self._bodies[openmetrics].parts(compressed)

    def body(self, openmetrics: bool = False, compressed: bool = False) -> bytes:
        """The exposition as one byte string (joined once per snapshot)."""
        return self._bodies[openmetrics].joined(compressed)


@dataclass
class _Region:
    renderer: RegionRenderer
    up: bool = False
    last_success: float | None = None
    duration: float | None = None
    last_error: str | None = None
    servers: tuple[Server, ...] = ()
    fragments: tuple[bytes, ...] = ()
    parts: tuple[Part, ...] = ()


@dataclass
class _Account:
    name: str
    tenant_id: str = ""
    rackconnect: bool = False
    managed: bool = False
    known: bool = False
    polled: bool = False
    regions: dict[str, _Region] = field(default_factory=dict)


class Store:
    """Holds the latest data of every account and region and publishes snapshots.

    Pollers call the ``region_*`` and ``account_*`` methods; each call publishes a new
    snapshot, so a slow region never holds back another's data. Scrapes read ``current``.
    With ``publish_delay`` > 0, changes arriving within that many seconds of each other
    share one snapshot, which bounds the cost of publishing when thousands of regions
    finish their polls every interval.
    """

    def __init__(
        self, account_names: Iterable[str], interval: float, publish_delay: float = 0.0
    ) -> None:
        self._interval = interval
        self._publish_delay = publish_delay
        self._pending: threading.Timer | None = None
        self._lock = threading.Lock()
        self._accounts = {name: _Account(name) for name in account_names}
        self._errors: dict[tuple[str, str, str], int] = {}
        self._requests: dict[tuple[str, str, str, str], int] = {}
        self._counter_lock = threading.Lock()
        self._reload: tuple[bool, float | None] | None = None
        self._extra: tuple[tuple[Family, bytes], ...] = ()
        with self._lock:
            self._publish()

    @property
    def current(self) -> Snapshot:
        """The latest snapshot (reading it needs no lock)."""
        return self._current

    def count_request(self, account: str, region: str, api: str, code: int) -> None:
        """Count one upstream HTTP answer."""
        key = (account, region, api, str(code))
        with self._counter_lock:
            self._requests[key] = self._requests.get(key, 0) + 1

    def add_account(self, name: str) -> None:
        """Start tracking an account (after a configuration reload)."""
        with self._lock:
            self._accounts.setdefault(name, _Account(name))
            self._changed()

    def remove_account(self, name: str) -> None:
        """Forget an account and every series of it (after a configuration reload)."""
        with self._lock:
            self._accounts.pop(name, None)
            with self._counter_lock:
                for table in (self._errors, self._requests):
                    for key in [k for k in table if k[0] == name]:
                        del table[key]
            self._changed()

    def keep_regions(self, name: str, regions: Iterable[str]) -> None:
        """Forget the regions of an account that are not in ``regions``."""
        keep = set(regions)
        with self._lock:
            account = self._accounts.get(name)
            if account is None:
                return
            for region in [r for r in account.regions if r not in keep]:
                del account.regions[region]
                with self._counter_lock:
                    for table in (self._errors, self._requests):
                        for key in [k for k in table if k[:2] == (name, region)]:
                            del table[key]
            self._changed()

    def config_reloaded(self, ok: bool, when: float) -> None:
        """Record a configuration (re)load: successful or not, and when."""
        with self._lock:
            last_success = self._reload[1] if self._reload else None
            self._reload = (ok, when if ok else last_success)
            self._changed()

    def account_known(self, name: str, tenant_id: str, rackconnect: bool, managed: bool) -> None:
        """Record what Identity said about an account."""
        with self._lock:
            account = self._accounts.get(name)
            if account is None:  # removed by a reload while its last poll ran
                return
            known = (account.tenant_id, account.known, account.rackconnect, account.managed)
            if known == (tenant_id, True, rackconnect, managed) and "" not in account.regions:
                return  # nothing new: the current snapshot says it already
            account.tenant_id, account.known = tenant_id, True
            account.rackconnect, account.managed = rackconnect, managed
            # An earlier authentication failure was reported under region "".
            account.regions.pop("", None)
            self._changed()

    def account_polled(self, name: str) -> None:
        """Mark the end of a poll of every region of an account."""
        with self._lock:
            if name in self._accounts and not self._accounts[name].polled:
                self._accounts[name].polled = True
                self._changed()

    def region_succeeded(
        self, account: str, region: str, servers: Iterable[Server], duration: float
    ) -> None:
        """Replace a region's data with a successful poll's result."""
        self._set_region(account, region, tuple({s.id: s for s in servers}.values()), duration)

    def region_merged(
        self,
        account: str,
        region: str,
        changed: Iterable[Server],
        deleted: Iterable[str],
        duration: float,
    ) -> None:
        """Apply a successful delta poll: changed servers replace or join, deleted ones leave.

        The merged region replaces the old one in one step, like a full result.
        """
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None:  # removed by a reload while its last poll ran
                return
            current = self._region(acct, region).servers
        # Only this region's poller writes its servers, so they cannot change meanwhile.
        by_id = {s.id: s for s in current}
        for server in changed:
            by_id[server.id] = server
        for server_id in deleted:
            by_id.pop(server_id, None)
        self._set_region(account, region, tuple(by_id.values()), duration)

    def merged_size(
        self, account: str, region: str, changed: Iterable[Server], deleted: Iterable[str]
    ) -> int:
        """How many servers the region would hold after ``region_merged`` with these."""
        with self._lock:
            acct = self._accounts.get(account)
            state = acct.regions.get(region) if acct else None
            ids = {s.id for s in state.servers} if state else set()
        ids.update(s.id for s in changed)
        ids.difference_update(deleted)
        return len(ids)

    def _set_region(
        self, account: str, region: str, unique: tuple[Server, ...], duration: float
    ) -> None:
        with self._lock:
            acct = self._accounts.get(account)
            if acct is None:
                return
            state = self._region(acct, region)
            rackconnect, managed = acct.rackconnect, acct.managed
        # Rendering needs no lock: only this region's poller uses its renderer.
        fragments = state.renderer.render(unique, rackconnect, managed)
        # Compress here, in the poller's thread, so that scrapes never do.
        parts = state.parts if fragments is state.fragments else tuple(Part(f) for f in fragments)
        with self._lock:
            state.servers, state.fragments, state.parts = unique, fragments, parts
            state.up, state.duration, state.last_error = True, duration, None
            state.last_success = time.time()
            self._changed()

    def region_failed(self, account: str, region: str, reason: str, duration: float) -> None:
        """Record a failed poll; the region keeps its last good servers."""
        with self._lock:
            if account not in self._accounts:
                return
            state = self._region(self._accounts[account], region)
            state.up, state.duration, state.last_error = False, duration, reason
            key = (account, region, reason)
            with self._counter_lock:
                self._errors[key] = self._errors.get(key, 0) + 1
            self._changed()

    def set_extra(self, extra: Iterable[tuple[Family, bytes]]) -> None:
        """Replace the extra families (already rendered lines) and publish."""
        with self._lock:
            self._extra = tuple(extra)
            self._changed()

    def regions(self, account: str) -> list[str]:
        """The regions known for an account."""
        with self._lock:
            acct = self._accounts.get(account)
            return [r for r in acct.regions if r] if acct else []

    def _region(self, account: _Account, region: str) -> _Region:
        state = account.regions.get(region)
        if state is None:
            state = account.regions[region] = _Region(RegionRenderer(account.name, region))
            with self._counter_lock:
                for reason in REASONS:
                    self._errors.setdefault((account.name, region, reason), 0)
        return state

    def _changed(self) -> None:
        """Publish now, or soon when publishes are batched. Call with the lock held."""
        if self._publish_delay <= 0:
            self._publish()
        elif self._pending is None:
            self._pending = threading.Timer(self._publish_delay, self._publish_pending)
            self._pending.daemon = True
            self._pending.start()

    def _publish_pending(self) -> None:
        with self._lock:
            self._pending = None
            self._publish()

    def _publish(self) -> None:
        """Build and swap in a new snapshot. Call with the lock held."""
        views = tuple(
            AccountView(
                name=a.name,
                tenant_id=a.tenant_id,
                rackconnect=a.rackconnect,
                managed=a.managed,
                known=a.known,
                polled=a.polled,
                regions=tuple(
                    RegionView(r, s.up, s.last_success, s.duration, s.last_error, s.servers)
                    for r, s in sorted(a.regions.items())
                ),
            )
            for a in sorted(self._accounts.values(), key=lambda a: a.name)
        )
        facts = [
            AccountFacts(a.name, a.tenant_id, a.rackconnect, a.managed) for a in views if a.known
        ]
        health = [
            RegionHealth(a.name, r.region, r.up, r.last_success, r.duration)
            for a in views
            for r in a.regions
        ]
        fragments = [
            self._accounts[a.name].regions[r.region].parts
            for a in views
            for r in a.regions
            if self._accounts[a.name].regions[r.region].parts
        ]
        with self._counter_lock:
            errors, requests = dict(self._errors), dict(self._requests)
        text, openmetrics = (
            Body(
                render_parts(
                    accounts=facts,
                    regions=health,
                    server_fragments=fragments,
                    errors=errors,
                    requests=requests,
                    interval=self._interval,
                    openmetrics=om,
                    config_reload=self._reload,
                    extra=self._extra,
                )
            )
            for om in (False, True)
        )
        self._current = Snapshot(views, text, openmetrics)
