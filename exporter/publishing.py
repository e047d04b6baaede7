"""Publishing: a region's records rendered into compressed parts, and snapshots of them all.

A write renders its region in the poller's thread (the per-server families, the history,
gzip), so that publishing a snapshot only puts parts in order and a scrape only sends them.
``Publisher`` decides when a snapshot is built: at once, or after the publish delay, so
that changes arriving close together share one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from exporter.exposition.gzipparts import Body, Part, Payload
from exporter.exposition.history import RegionHistory, changes
from exporter.exposition.render import RegionRenderer
from exporter.exposition.sections import render_parts
from exporter.exposition.text import ServerFamily
from exporter.model import AccountView, Pool, RegionView, Server

# A write that replaces at least this many bytes of a region's lines publishes at once.
PUBLISH_AT_ONCE_BYTES = 1024 * 1024


class Snapshot:
    """A complete state of every account, with its exposition built once."""

    def __init__(
        self,
        accounts: tuple[AccountView, ...],
        text: Body,
        openmetrics: Body,
        published: float,
    ) -> None:
        self.accounts = accounts
        self.published = published
        self._bodies = {False: text, True: openmetrics}

    @property
    def ready(self) -> bool:
        """True once every account has finished its first poll."""
        return all(a.polled for a in self.accounts)

    def parts(
        self, openmetrics: bool = False, compressed: bool = False, first: Part | None = None
    ) -> Payload:
        """The exposition to send: gzip is already computed, plain is inflated as it goes.

        ``first`` (the process families) goes in front, in the same gzip stream.
        """
        body = self._bodies[openmetrics]
        return body.parts(compressed) if first is None else body.prepended(first, compressed)

    def body(self, openmetrics: bool = False, compressed: bool = False) -> bytes:
        """The exposition as one byte string (joined once per snapshot)."""
        return self._bodies[openmetrics].joined(compressed)


def build_snapshot(
    accounts: tuple[AccountView, ...],
    *,
    errors: Mapping[tuple[str, str, str], int],
    v3_errors: Mapping[tuple[str, str, str], int],
    requests: Mapping[tuple[str, str, str, str], int],
    interval: float,
    config_reload: tuple[bool, float | None] | None,
    server_families: tuple[ServerFamily, ...],
    shard: tuple[int, int] | None,
    now: float,
) -> Snapshot:
    """A snapshot of ``accounts``, in both formats."""
    text, openmetrics = (
        Body(
            render_parts(
                accounts,
                errors=errors,
                v3_errors=v3_errors,
                requests=requests,
                interval=interval,
                openmetrics=om,
                config_reload=config_reload,
                server_families=server_families,
                shard=shard,
            )
        )
        for om in (False, True)
    )
    return Snapshot(accounts, text, openmetrics, now)


class V3Poll(NamedTuple):
    """How a region's RackConnect v3.0 API answered a poll, and its last good pools."""

    up: bool
    pools: tuple[Pool, ...] = ()
    reason: str | None = None  # why it failed (``exporter.errors.REASONS``)


class Rendered(NamedTuple):
    """A region rendered from new records, not yet published."""

    records: tuple[Server, ...]
    history: RegionHistory
    history_fragments: tuple[bytes, ...]
    parts: tuple[tuple[Part, ...], ...]
    replaced: int  # bytes of the published parts that these replace


@dataclass
class RegionState:
    """A region's published view and what renders it; ``lock`` spans render and swap."""

    view: RegionView
    renderer: RegionRenderer
    history: RegionHistory = field(default_factory=RegionHistory)
    history_fragments: tuple[bytes, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)

    def render(
        self, servers: Iterable[Server], account: AccountView, clock: Callable[[], float]
    ) -> Rendered:
        """The region with these servers: lines, history and parts, reused where unchanged."""
        old = self.view.servers
        region = self.view.region
        rackconnect = account.expects_rackconnect(region)
        families = self.renderer.render(servers, rackconnect, account.managed)
        records = self.renderer.records
        # The history changes only on transitions: compared with the last good records
        # (the renderer hands back the very same tuple when no record changed).
        history = self.history
        if records is not old:
            history = history.record(changes(old, records, clock()))
        lines = history.render(account.name, region, rackconnect, account.managed)
        # The renderer's parts are compressed already, in this thread; the history's are
        # compressed here, so that scrapes never compress anything.
        parts: tuple[tuple[Part, ...], ...] = self.view.parts
        count = len(families)
        if parts[:count] != families or lines is not self.history_fragments:  # parts by identity
            parts = families + (
                parts[count:]
                if lines is self.history_fragments
                else tuple((Part(f),) for f in lines)
            )
        # Replaced lines stay alive until a snapshot without them is published: many of
        # them go out at once instead of waiting for the publish delay.
        kept = {id(p) for chunks in parts for p in chunks}
        replaced = sum(len(p) for chunks in self.view.parts for p in chunks if id(p) not in kept)
        return Rendered(records, history, lines, parts, replaced)

    def publish(
        self, rendered: Rendered, now: float, duration: float, v3: V3Poll | None = None
    ) -> None:
        """Show ``rendered`` as the region's last successful poll, finished at ``now``."""
        self.history = rendered.history
        self.history_fragments = rendered.history_fragments
        self.view = RegionView(
            self.view.region,
            True,
            now,
            duration,
            None,
            rendered.records,
            rendered.parts,
            v3_up=None if v3 is None else v3.up,
            pools=() if v3 is None else v3.pools,
        )


class Publisher:
    """Holds the current snapshot and builds the next one, at once or after ``delay``.

    ``build`` makes a snapshot; it and ``changed`` are called with ``lock`` held.
    """

    def __init__(self, build: Callable[[], Snapshot], delay: float, lock: threading.Lock) -> None:
        self._build = build
        self._delay = delay
        self._lock = lock
        self._pending: threading.Timer | None = None
        self.current = build()

    def changed(self, at_once: bool = False) -> None:
        """Publish now, or soon when publishes are batched. Call with the lock held."""
        if self._delay <= 0 or at_once:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            self.current = self._build()
        elif self._pending is None:
            self._pending = threading.Timer(self._delay, self._publish_pending)
            self._pending.daemon = True
            self._pending.start()

    def flush(self) -> None:
        """Publish now the changes waiting for the delay, if any. Call with the lock held."""
        if self._pending is not None:
            self.changed(at_once=True)

    def _publish_pending(self) -> None:
        with self._lock:
            self._pending = None
            self.current = self._build()
