"""Automation history: the state changes seen between two polls of a region, and their lines.

A poll's new records are compared with the region's last good ones. A server's first
sighting is never a change, so nothing is counted for servers already finished when the
exporter starts, restarts or gets a region back; a failed poll changes no record, so the
next listing is compared with the last good one and nothing is counted twice.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from operator import attrgetter
from typing import NamedTuple

from prometheus_client.utils import floatToGoString

from exporter.exposition.families import AUTOMATION_DURATION, AUTOMATION_TRANSITIONS
from exporter.exposition.text import labels
from exporter.model import (
    ACTIVE,
    AUTOMATION_FAILURES,
    COMPLETE,
    DEPLOYED,
    FIRST,
    MANAGED_FAILURES,
    UNKNOWN,
    PoolNode,
    PublicIp,
    Server,
)

RACKCONNECT = "rackconnect"
MANAGED = "managed"
V3_PUBLIC_IP = "rackconnect_v3_public_ip"  # RackConnect v3.0, per public IP
V3_POOL_NODE = "rackconnect_v3_pool_node"  # RackConnect v3.0, per pool membership
ABSENT = "none"  # the `from`/`to` of a metadata key (or a v3.0 resource) that is not there
# A v3.0 resource is timed from its `created` when it first reaches one of these.
_V3_OUTCOMES = frozenset({ACTIVE, "ADD_FAILED"})
_V3_ON_ITS_WAY = frozenset({ABSENT, "ADDING", UNKNOWN})

# Upper bounds in seconds, from a minute to a day.
BUCKETS = (60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
_LE = (*(floatToGoString(b) for b in BUCKETS), "+Inf")

TERMINAL = {
    RACKCONNECT: frozenset({DEPLOYED, *AUTOMATION_FAILURES}),
    MANAGED: frozenset({COMPLETE, *MANAGED_FAILURES}),
}
_STATE = {RACKCONNECT: attrgetter("automation_status"), MANAGED: attrgetter("managed_status")}
_BOTH = (RACKCONNECT, MANAGED)
_FIRST_GEN = (RACKCONNECT,)
# Histograms present from the start (at 0), so that the first observation shows in rate().
_SUCCESS = {RACKCONNECT: DEPLOYED, MANAGED: COMPLETE}


class Change(NamedTuple):
    """One observed state change; ``duration`` is set when it reached a terminal state."""

    automation: str
    before: str
    after: str
    duration: float | None


def _change(automation: str, prev: Server, server: Server, now: float) -> Change | None:
    before, after = _STATE[automation](prev), _STATE[automation](server)
    if before == after:
        return None
    duration = None
    if after in TERMINAL[automation] and before not in TERMINAL[automation]:
        when = now
        # The change came with this poll: upstream stamped it in `updated`.
        if server.updated is not None and (prev.updated is None or server.updated > prev.updated):
            when = min(server.updated, now)
        if server.created is not None:
            duration = max(0.0, when - server.created)
    return Change(automation, before or ABSENT, after or ABSENT, duration)


def _v3_changes(
    automation: str,
    old: tuple[PublicIp, ...] | tuple[PoolNode, ...],
    new: tuple[PublicIp, ...] | tuple[PoolNode, ...],
    now: float,
) -> list[Change]:
    """A server's v3.0 resources of one kind: each one's change, timed where it arrived."""
    before = {r.id: r for r in old}
    found = []
    for resource in new:
        was = before.pop(resource.id, None)
        prior = ABSENT if was is None else was.status
        if prior == resource.status:
            continue
        duration = None
        if resource.status in _V3_OUTCOMES and prior in _V3_ON_ITS_WAY:
            when = now
            updated = resource.updated
            if updated is not None and (
                was is None or was.updated is None or updated > was.updated
            ):
                when = min(updated, now)
            if resource.created is not None:
                duration = max(0.0, when - resource.created)
        found.append(Change(automation, prior, resource.status, duration))
    found.extend(Change(automation, r.status, ABSENT, None) for r in before.values())
    return found


def changes(old: Iterable[Server], new: Iterable[Server], now: float) -> list[Change]:
    """The changes from a region's last good records to a poll's, at poll time ``now``."""
    before = {s.id: s for s in old}
    found: list[Change] = []
    if not before:
        return found
    for server in new:
        prev = before.get(server.id)
        if prev is None or prev is server:
            continue
        if (
            prev.automation_status != server.automation_status
            or prev.managed_status != server.managed_status
        ):
            # First-generation servers have no Managed Operations state of their own.
            for automation in _FIRST_GEN if server.generation == FIRST else _BOTH:
                change = _change(automation, prev, server, now)
                if change is not None:
                    found.append(change)
        if prev.public_ips is not server.public_ips:
            found += _v3_changes(V3_PUBLIC_IP, prev.public_ips, server.public_ips, now)
        if prev.pool_nodes is not server.pool_nodes:
            found += _v3_changes(V3_POOL_NODE, prev.pool_nodes, server.pool_nodes, now)
    return found


class RegionHistory:
    """Durations and transition counts of one account and region; ``record`` copies on write."""

    def __init__(self) -> None:
        # (automation, outcome) -> per-bucket counts (the last one is +Inf only), then the sum
        self._durations: dict[tuple[str, str], tuple[tuple[int, ...], float]] = {}
        self._transitions: dict[tuple[str, str, str], int] = {}
        self._rendered: tuple[tuple[str, str, bool, bool], tuple[bytes, bytes]] | None = None

    def record(self, found: Iterable[Change]) -> RegionHistory:
        """A history with these changes added (this very one when there are none)."""
        found = list(found)
        if not found:
            return self
        fresh = RegionHistory()
        fresh._durations = dict(self._durations)
        fresh._transitions = dict(self._transitions)
        for change in found:
            key = (change.automation, change.before, change.after)
            fresh._transitions[key] = fresh._transitions.get(key, 0) + 1
            if change.duration is not None:
                outcome = (change.automation, change.after)
                counts, total = fresh._durations.get(outcome, ((0,) * len(_LE), 0.0))
                slot = bisect_left(BUCKETS, change.duration)
                bumped = (*counts[:slot], counts[slot] + 1, *counts[slot + 1 :])
                fresh._durations[outcome] = (bumped, total + change.duration)
        return fresh

    def render(
        self, account: str, region: str, rackconnect: bool, managed: bool
    ) -> tuple[bytes, bytes]:
        """The duration and transition lines; the same tuple again while nothing changed."""
        key = (account, region, rackconnect, managed)
        if self._rendered is not None and self._rendered[0] == key:
            return self._rendered[1]
        durations = dict(self._durations)
        for automation, wanted in ((RACKCONNECT, rackconnect), (MANAGED, managed)):
            if wanted:
                durations.setdefault((automation, _SUCCESS[automation]), ((0,) * len(_LE), 0.0))
        lines: list[str] = []
        name = AUTOMATION_DURATION.name
        for (automation, outcome), (counts, total) in sorted(durations.items()):
            head = labels(account=account, region=region, automation=automation, outcome=outcome)
            running = 0
            for le, count in zip(_LE, counts, strict=True):
                running += count
                lines.append(f'{name}_bucket{{{head},le="{le}"}} {running}\n')
            lines.append(f"{name}_sum{{{head}}} {floatToGoString(total)}\n")
            lines.append(f"{name}_count{{{head}}} {running}\n")
        transitions = "".join(
            f"{AUTOMATION_TRANSITIONS.name}"
            f"{{{labels(account=account, region=region, automation=a, **{'from': b, 'to': c})}}}"
            f" {n}\n"
            for (a, b, c), n in sorted(self._transitions.items())
        )
        rendered = (
            "".join(lines).encode("utf-8", "replace"),
            transitions.encode("utf-8", "replace"),
        )
        self._rendered = (key, rendered)
        return rendered
