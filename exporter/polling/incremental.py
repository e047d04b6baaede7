"""Incremental polling: list a region in full now and then, only its changes in between.

Cloud Servers answers ``changes-since`` with the servers changed since a time, including
those deleted since then (status DELETED). Each region remembers when its last successful
listing started, on the upstream's own clock (the ``Date`` header of the first page), and
asks for changes from a little before that (``OVERLAP``), so a skew between the machine
that stamps ``updated`` and the one that sends ``Date`` cannot lose a change. The start
is never later than the local clock minus the overlap, so one answer from a node dated
in the future cannot hide the changes that follow; a ``Date`` more than ``MAX_SKEW``
from the local clock is logged once per region. Every
``full_every`` polls the region is listed in full, which heals anything a delta missed.

The lister is ``CloudServers.list_region(region, changes_since, known)``: Cloud Servers v2
sends ISO 8601 UTC; first-gen v1.0 sends epoch seconds and answers 304 Not
Modified when nothing changed (``Listing.not_modified``). The dates here are epoch seconds
for both. ``RegionRecords`` holds what the listings add up to: the one place a delta is
merged and the server cap is checked against the merged region. It keeps the servers in
order of id, the order in which Prometheus sorts their series: a query that selects them
then finds them already sorted (sorting tens of thousands of series in random order is
most of what selecting them costs).
"""

from __future__ import annotations

from operator import attrgetter

from exporter.logs import logger
from exporter.model import Server
from exporter.rackspace.cloudservers import Listing, check_size

OVERLAP = 60.0  # seconds asked for again in each delta, against clock skew
DEFAULT_FULL_EVERY = 10  # a full listing every this many polls of a region
MAX_DELTA_AGE = 7 * 86400.0  # deletions are kept upstream for 30 days; stay well inside
MAX_SKEW = 300.0  # a Date further than this from the local clock is logged

_by_id = attrgetter("id")


class RegionRecords:
    """A region's servers as its listings add up: a full listing replaces, a delta merges.

    ``known`` (by id) lets a lister hand back the records already held for servers that
    did not change; ``servers`` are in order of id.
    """

    def __init__(self, region: str) -> None:
        self.region = region
        self.known: dict[str, Server] = {}
        self.servers: tuple[Server, ...] = ()

    def apply(self, listing: Listing) -> tuple[Server, ...]:
        """The region's servers with ``listing``; nothing is kept when it is refused.

        Raises UpstreamError when a delta would take the region over the server cap.
        """
        held = self.servers
        if listing.full:  # its size was checked page by page
            listed, known = listing.servers, self.known
            if (
                len(listed) == len(held)
                and all(known.get(s.id) is s for s in listed)
                and len(set(map(id, listed))) == len(held)  # no server listed twice
            ):
                return held  # the very records of last time: an unchanged listing
            known = {s.id: s for s in listed}
        else:
            known = self.known
            if listing.servers or listing.deleted:
                known = dict(known)
                known.update((s.id, s) for s in listing.servers)
                for server_id in listing.deleted:
                    known.pop(server_id, None)
            check_size(len(known), self.region, changes=True)
            if known is self.known:
                return held
        self.known, self.servers = known, tuple(sorted(known.values(), key=_by_id))
        return self.servers


class RegionSync:
    """Decides, per region, between a full listing and a delta, and from when."""

    def __init__(
        self, full_every: int = DEFAULT_FULL_EVERY, overlap: float = OVERLAP, name: str = ""
    ) -> None:
        if full_every < 1:
            raise ValueError("full_every must be at least 1")
        self.full_every = full_every
        self.overlap = overlap
        self.name = name  # for the skew warning
        self._skew_logged = False
        self._since: float | None = None
        self._synced_at = 0.0  # local clock of the last successful listing
        self._deltas = 0

    def changes_since(self, now: float) -> float | None:
        """Where the next delta starts, or None when the next poll must list in full."""
        if self._since is None or self._deltas >= self.full_every - 1:
            return None
        if now - self._synced_at > MAX_DELTA_AGE:
            return None
        return self._since

    def succeeded(self, listing: Listing, full: bool, now: float) -> None:
        """Record a successful listing; the next delta starts at its date minus the overlap.

        ``now`` is the local clock (epoch seconds) when the listing ended.
        """
        started = listing.date if listing.date is not None else now
        if abs(started - now) > MAX_SKEW and not self._skew_logged:
            self._skew_logged = True
            logger.warning(
                "upstream Date far from the local clock",
                extra={"region": self.name, "skew_seconds": round(started - now)},
            )
        # A Date ahead is never used (it would hide what changes next); one behind is
        # the upstream's own clock, which stamps the changes: starting early is safe.
        since = min(started, now) - self.overlap
        if not full and self._since is not None:
            # Never move backwards (a Date header from a skewed node), never go stale.
            since = max(since, self._since)
        self._since = since
        self._synced_at = now
        self._deltas = 0 if full else self._deltas + 1

    def reset(self) -> None:
        """Forget the baseline: the next poll lists in full."""
        self._since = None
        self._deltas = 0
