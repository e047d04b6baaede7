"""A region's per-server families, rendered from its records: one bytes fragment a family.

Rendering happens once per write of the region, never per scrape. Each server's lines are
cached and re-rendered only when that server's record changes, so a poll that changes
little costs little (the kube-state-metrics approach). Each family writes its own lines
(``ServerFamily.lines``); the renderer only knows how many there are.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterable

from exporter.exposition.families import PER_SERVER_FAMILIES
from exporter.exposition.text import Lines, ServerFamily, escape_label
from exporter.model import Server


def region_head(account: str, region: str) -> str:
    """The start of every per-server line's labels in a region, up to the server id."""
    return f'{{account="{escape_label(account)}",region="{escape_label(region)}",server_id="'


def server_lines(
    server: Server,
    head: str,
    rackconnect: bool,
    managed: bool,
    writers: tuple[tuple[str, Lines], ...],
) -> list[bytes]:
    """One server's lines per family: ``writers`` are the families' (name, lines)."""
    labels = f'{head}{escape_label(server.id)}"'
    # str.encode as exposition.text.encode does, without a call per family
    return [
        lines(server, name, labels, rackconnect, managed).encode("utf-8", "replace")
        for name, lines in writers
    ]


def render_server(
    server: Server,
    account: str,
    region: str,
    rackconnect: bool,
    managed: bool,
    *,
    families: tuple[ServerFamily, ...] = PER_SERVER_FAMILIES,
) -> tuple[bytes, ...]:
    """One server's lines, one bytes fragment per family of ``families``."""
    writers = tuple((f.name, f.lines) for f in families)
    return tuple(server_lines(server, region_head(account, region), rackconnect, managed, writers))


class RegionRenderer:
    """Renders the per-server families of one account and region, caching per server.

    A server's cached lines are not kept as separate strings: they are where they already
    are, in the region's joined fragments, found by offset (``_spans``, per server and
    family: start, then length). That halves the memory of a large fleet.
    """

    def __init__(
        self,
        account: str,
        region: str,
        families: tuple[ServerFamily, ...] = PER_SERVER_FAMILIES,
    ) -> None:
        self.account = account
        self.region = region
        self.families = families
        self._head = region_head(account, region)
        self._writers = tuple((f.name, f.lines) for f in families)
        self._rows: dict[str, int] = {}  # server id -> its row in records and _spans
        self._flags: tuple[bool, bool] | None = None  # the account's, when last rendered
        self._active = tuple(range(len(families)))  # the families written (see only_if)
        self._spans = array("Q")
        self._last: tuple[bytes, ...] | None = None  # per family written
        self._out: tuple[bytes, ...] = ()  # per family: what render returned last
        self.rendered = 0  # servers rendered by the last call, for tests and logs
        self.records: tuple[Server, ...] = ()  # the last call's servers, cached ones reused

    def render(self, servers: Iterable[Server], rackconnect: bool, managed: bool):
        """Per-family fragments for the region; re-renders only servers that changed.

        When nothing changed (same servers, same order) it returns the very tuple it
        returned last time, so callers can skip work by identity.
        """
        old, held = self._rows, self.records
        if self._flags != (rackconnect, managed):
            old = {}  # every line of the region changes
        servers = list(servers)
        if old and len(servers) == len(held) and all(map(operator.is_, servers, held)):
            self.rendered = 0  # the very records of last time (an unchanged listing)
            return self._out
        active = self._written(servers)
        if active != self._active:  # a family starts or stops applying: render afresh
            old, self._last, self._active = {}, None, active
            self._writers = tuple((self.families[i].name, self.families[i].lines) for i in active)
        hits: list[int | None] = []  # per server: its row last time, if unchanged
        for server in servers:
            row = old.get(server.id)
            if row is not None and (held[row] is server or held[row] == server):
                hits.append(row)
            else:
                hits.append(None)
        self.rendered = hits.count(None)
        # Unchanged servers keep the records already held, so that the region's view and
        # this cache share one set instead of holding equal copies.
        servers = [s if h is None else held[h] for s, h in zip(servers, hits, strict=True)]
        self.records = tuple(servers)
        self._flags = (rackconnect, managed)
        if (
            self._last is not None
            and not self.rendered
            and len(servers) == len(old)
            and [s.id for s in servers] == list(old)
        ):
            return self._out
        n = len(self._writers)
        last = self._last or (b"",) * n
        views = [memoryview(b) for b in last]
        spans = self._spans
        width = 2 * n

        def cached(row: int) -> tuple[memoryview, ...]:
            at = row * width
            return tuple(
                views[i][spans[at + i] : spans[at + i] + spans[at + n + i]] for i in range(n)
            )

        # Same servers in the same order: a family whose lines did not change is kept as
        # it is (so is its compressed part), instead of being joined again.
        keep = [False] * n
        fresh: dict[int, list[bytes]] = {}
        if self._last is not None and [s.id for s in servers] == list(old):
            keep = [True] * n
            for row, (server, hit) in enumerate(zip(servers, hits, strict=True)):
                if hit is None:
                    piece = fresh[row] = server_lines(
                        server, self._head, rackconnect, managed, self._writers
                    )
                    before = cached(old[server.id])
                    keep = [k and piece[i] == before[i] for i, k in enumerate(keep)]
        # Each family is one exact-size join of its pieces: neighbouring cached rows are one
        # slice of the old buffer (a run), neighbouring fresh rows one growing bytearray, so
        # the pieces stay few and no small byte string outlives its row.
        pieces: list[list[bytes | bytearray | memoryview]] = [[] for _ in range(n)]
        runs = [[0, 0] for _ in range(n)]  # per family: the open run's start, end
        tails: list[bytearray | None] = [None] * n  # per family: the open fresh rows
        rows: dict[str, int] = {}
        new_spans = array("Q")
        offsets = [0] * n
        for row, (server, hit) in enumerate(zip(servers, hits, strict=True)):
            if hit is not None:
                at = hit * width
                lengths = spans[at + n : at + width].tolist()
                for i in range(n):
                    if keep[i]:
                        continue
                    tails[i] = None
                    run, start = runs[i], spans[at + i]
                    if run[1] != start:
                        if run[1] > run[0]:
                            pieces[i].append(views[i][run[0] : run[1]])
                        run[0] = start
                    run[1] = start + lengths[i]
            else:
                lines = fresh.get(row) or server_lines(
                    server, self._head, rackconnect, managed, self._writers
                )
                lengths = [len(f) for f in lines]
                for i in range(n):
                    if keep[i] or not lengths[i]:
                        continue
                    run = runs[i]
                    if run[1] > run[0]:
                        pieces[i].append(views[i][run[0] : run[1]])
                    run[0] = run[1] = 0
                    tail = tails[i]
                    if tail is None:
                        tail = tails[i] = bytearray()
                        pieces[i].append(tail)
                    tail += lines[i]
            new_spans.extend(offsets)
            new_spans.extend(lengths)
            for i in range(n):
                offsets[i] += lengths[i]
            rows[server.id] = row
        joined_list = []
        for i in range(n):
            run = runs[i]
            if run[1] > run[0]:
                pieces[i].append(views[i][run[0] : run[1]])
            joined_list.append(last[i] if keep[i] else b"".join(pieces[i]))
            pieces[i], tails[i] = [], None  # one family's pieces at a time
        joined = tuple(joined_list)
        self._rows, self._spans, self._last = rows, new_spans, joined
        self._out = joined
        if len(active) < len(self.families):  # the others have no lines
            out = [b""] * len(self.families)
            for i, fragment in zip(active, joined, strict=True):
                out[i] = fragment
            self._out = tuple(out)
        return self._out

    def _written(self, servers: list[Server]) -> tuple[int, ...]:
        """The families to write: all but those whose ``only_if`` no server passes."""
        conditions = {f.only_if for f in self.families if f.only_if is not None}
        passed = {c for c in conditions if any(map(c, servers))}
        return tuple(
            i for i, f in enumerate(self.families) if f.only_if is None or f.only_if in passed
        )
