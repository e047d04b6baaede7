"""The fleet as scrapes see it: immutable snapshots, swapped atomically.

Each account has exactly one writer at a time, an ``AccountWriter`` held by the poller that
owns the account. A configuration reload hands a changed account a new writer, or forgets
the account; writes through the old writer are then dropped, so a poll that was still
running when its poller was replaced can neither overwrite newer data nor bring back a
region the reload removed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from exporter.errors import REASONS
from exporter.exposition.families import PER_SERVER_FAMILIES
from exporter.exposition.render import RegionRenderer
from exporter.exposition.text import ServerFamily
from exporter.model import AccountView, RegionView, Server
from exporter.publishing import (
    PUBLISH_AT_ONCE_BYTES,
    Publisher,
    RegionState,
    Snapshot,
    V3Poll,
    build_snapshot,
)

Clock = Callable[[], float]
__all__ = ["AccountWriter", "Snapshot", "Store"]


@dataclass
class _Account:
    view: AccountView
    writer: AccountWriter
    regions: dict[str, RegionState] = field(default_factory=dict)


class AccountWriter:
    """The one way to change an account's data, held by the poller that owns the account.

    Every method does nothing once the store has handed out a newer writer for the account
    or forgotten it (``current`` is then False).
    """

    def __init__(self, store: Store, account: str) -> None:
        self.store = store
        self.account = account

    @property
    def current(self) -> bool:
        """True while this writer owns its account."""
        return self.store._owner(self) is not None

    def known(
        self,
        tenant_id: str,
        rackconnect: bool,
        managed: bool,
        rackconnect_regions: tuple[str, ...] | None = None,
        rackconnect_v3_regions: tuple[str, ...] = (),
    ) -> None:
        """Record what Identity said about the account."""
        self.store._known(
            self, tenant_id, rackconnect, managed, rackconnect_regions, v3=rackconnect_v3_regions
        )

    def polled(self) -> None:
        """Mark the end of the first poll of every region of the account."""
        self.store._polled(self)

    def succeeded(
        self, region: str, servers: Iterable[Server], duration: float, v3: V3Poll | None = None
    ) -> None:
        """Replace a region's servers: its complete listing, one record per server id.

        ``v3`` is how the region's RackConnect v3.0 API answered (None: not a v3.0 region).
        """
        self.store._write(self, region, servers, duration, v3)

    def failed(self, region: str, reason: str, duration: float) -> None:
        """Record a failed poll; the region keeps its last good servers."""
        self.store._failed(self, region, reason, duration)

    def count_request(self, api: str, region: str, code: int) -> None:
        """Count one upstream HTTP answer (the client's ``on_response``)."""
        self.store._count_request(self, api, region, code)


class Store:
    """Holds the latest data of every account and region and publishes snapshots.

    Each write publishes a new snapshot, so a slow region never holds back another's data.
    Scrapes read ``current``. With ``publish_delay`` > 0, changes arriving within that many
    seconds of each other share one snapshot, which bounds the cost of publishing when
    thousands of regions finish their polls every interval. ``server_families`` are the
    per-server families every region renders (the agent adds its own); ``shard`` (index,
    total) adds the shard families of a replica of a sharded deployment.
    """

    def __init__(
        self,
        interval: float,
        *,
        publish_delay: float = 0.0,
        clock: Clock = time.time,
        server_families: tuple[ServerFamily, ...] = PER_SERVER_FAMILIES,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._families = server_families
        self._shard = shard
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._errors: dict[tuple[str, str, str], int] = {}
        self._v3_errors: dict[tuple[str, str, str], int] = {}  # of v3.0 regions only
        self._requests: dict[tuple[str, str, str, str], int] = {}
        self._reload: tuple[bool, float | None] | None = None
        with self._lock:
            self._publisher = Publisher(self._snapshot, publish_delay, self._lock)

    @property
    def current(self) -> Snapshot:
        """The latest snapshot (reading it needs no lock)."""
        return self._publisher.current

    def open_account(self, name: str) -> AccountWriter:
        """Start tracking an account, or keep its data; either way, a new sole writer."""
        writer = AccountWriter(self, name)
        with self._lock:
            account = self._accounts.get(name)
            if account is None:
                self._accounts[name] = _Account(AccountView(name), writer)
                self._changed(at_once=True)  # /-/ready must wait for the new account
            else:
                account.writer = writer
        return writer

    def remove_account(self, name: str) -> None:
        """Forget an account and every series of it."""
        with self._lock:
            self._accounts.pop(name, None)
            self._forget_counters(lambda key: key[0] == name)
            self._changed()

    def keep_regions(self, name: str, regions: Iterable[str]) -> None:
        """Forget the regions of an account that are not in ``regions``."""
        keep = set(regions)
        with self._lock:
            account = self._accounts.get(name)
            if account is None:
                return
            gone = [r for r in account.regions if r not in keep]
            for region in gone:
                del account.regions[region]
            self._forget_counters(lambda key: key[0] == name and key[1] in gone)
            self._changed()

    def config_reloaded(self, ok: bool, when: float) -> None:
        """Record a configuration (re)load: successful or not, and when."""
        with self._lock:
            last_success = self._reload[1] if self._reload else None
            self._reload = (ok, when if ok else last_success)
            self._changed()

    # What writers call, each checking ownership under the lock.

    def _owner(self, writer: AccountWriter) -> _Account | None:
        account = self._accounts.get(writer.account)
        return account if account is not None and account.writer is writer else None

    def _known(
        self,
        writer: AccountWriter,
        tenant_id: str,
        rackconnect: bool,
        managed: bool,
        rackconnect_regions: tuple[str, ...] | None = None,
        *,
        v3: tuple[str, ...] = (),
    ):
        with self._lock:
            account = self._owner(writer)
            if account is None:
                return
            view = account.view
            fresh = dataclasses.replace(
                view,
                tenant_id=tenant_id,
                known=True,
                rackconnect=rackconnect,
                managed=managed,
                rackconnect_regions=rackconnect_regions,
                rackconnect_v3_regions=v3,
            )
            # An earlier authentication failure was reported under region "".
            if fresh == view and "" not in account.regions:
                return  # nothing new: the current snapshot says it already
            account.view = fresh
            account.regions.pop("", None)
            self._changed()

    def _polled(self, writer: AccountWriter) -> None:
        with self._lock:
            account = self._owner(writer)
            if account is not None and not account.view.polled:
                account.view = dataclasses.replace(account.view, polled=True)
                self._changed()

    def _write(
        self,
        writer: AccountWriter,
        region: str,
        servers: Iterable[Server],
        duration: float,
        v3: V3Poll | None,
    ) -> None:
        with self._lock:
            account = self._owner(writer)
            if account is None:
                return
            state = self._region(account, region)
            view = account.view
        # One region renders at a time: regions polled in parallel would otherwise each hold
        # their old and new lines at once, and the GIL runs one render at a time anyway.
        with state.lock, self._render_lock:
            rendered = state.render(servers, view, self._clock)
            with self._lock:
                if self._owner(writer) is not account or account.regions.get(region) is not state:
                    return  # the owner changed or the region was removed while rendering
                state.publish(rendered, self._clock(), duration, v3)
                self._count_v3_error(writer.account, region, v3)
                self._changed(at_once=rendered.replaced >= PUBLISH_AT_ONCE_BYTES)

    def _failed(self, writer: AccountWriter, region: str, reason: str, duration: float) -> None:
        with self._lock:
            account = self._owner(writer)
            if account is None:
                return
            state = self._region(account, region)
            state.view = dataclasses.replace(
                state.view, up=False, duration=duration, last_error=reason
            )
            key = (writer.account, region, reason)
            self._errors[key] = self._errors.get(key, 0) + 1
            self._changed()

    def _count_v3_error(self, account: str, region: str, v3: V3Poll | None) -> None:
        """Count a failed v3.0 poll: from its first poll, a v3.0 region has every reason at
        0; a region that is no longer one has none."""
        for reason in REASONS:
            if v3 is None:
                self._v3_errors.pop((account, region, reason), None)
            else:
                self._v3_errors.setdefault((account, region, reason), 0)
        if v3 is not None and v3.reason is not None:
            self._v3_errors[account, region, v3.reason] += 1

    def _count_request(self, writer: AccountWriter, api: str, region: str, code: int) -> None:
        key = (writer.account, region, api, str(code))
        with self._lock:
            if self._owner(writer) is not None:
                self._requests[key] = self._requests.get(key, 0) + 1

    def _region(self, account: _Account, region: str) -> RegionState:
        state = account.regions.get(region)
        if state is None:
            renderer = RegionRenderer(account.view.name, region, self._families)
            state = account.regions[region] = RegionState(RegionView(region), renderer)
            for reason in REASONS:
                self._errors.setdefault((account.view.name, region, reason), 0)
        return state

    def _forget_counters(self, match: Callable[[tuple[str, ...]], bool]) -> None:
        for table in (self._errors, self._v3_errors, self._requests):
            for key in [k for k in table if match(k)]:
                del table[key]  # type: ignore[arg-type]

    def _changed(self, at_once: bool = False) -> None:
        """Publish now, or soon when publishes are batched. Call with the lock held."""
        self._publisher.changed(at_once)

    def flush(self) -> None:
        """Publish now the changes waiting for the publish delay, if any."""
        with self._lock:
            self._publisher.flush()

    def _snapshot(self) -> Snapshot:
        """A new snapshot of every account. Call with the lock held."""
        views = tuple(
            dataclasses.replace(a.view, regions=tuple(s.view for _, s in sorted(a.regions.items())))
            for _, a in sorted(self._accounts.items())
        )
        return build_snapshot(
            views,
            errors=self._errors,
            v3_errors=self._v3_errors,
            requests=self._requests,
            interval=self._interval,
            config_reload=self._reload,
            server_families=self._families,
            shard=self._shard,
            now=self._clock(),
        )
