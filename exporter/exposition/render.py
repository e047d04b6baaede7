"""A region's per-server families, rendered from its records: a few compressed chunks a family.

Rendering happens once per write of the region, never per scrape. Each server's lines are
cached and re-rendered only when that server's record changes, so a poll that changes
little costs little (the kube-state-metrics approach). Each family writes its own lines
(``ServerFamily.lines``); the renderer only knows how many there are.

A family's lines are cut into chunks of about ``CHUNK`` servers, where a server's id says
so (its CRC-32), so that a server added or removed moves no other chunk's boundaries. Each
chunk is kept only as a compressed ``Part``; the cache of a server's lines is where they
are in it. A chunk whose servers did not change is the very part of last time: a poll that
changes a few servers inflates, builds and compresses a few chunks, and holds plain lines
only for those, never for the whole region.
"""

from __future__ import annotations

import operator
import zlib
from array import array
from collections.abc import Iterable

from exporter.exposition.families import PER_SERVER_FAMILIES
from exporter.exposition.gzipparts import Part
from exporter.exposition.text import Lines, ServerFamily, escape_label
from exporter.model import Server

# Offsets and lengths in a chunk of a family: 32 bits, half the size of 64 (a chunk is at
# most CHUNK_MOST servers of a few KiB each).
SPAN = "I"
CHUNK = 256  # servers in a chunk, on average (a power of two)
CHUNK_MOST = 4 * CHUNK  # a chunk is cut here whatever the ids say


def _cuts(server_id: str) -> bool:
    """Whether a chunk starts at this server (1 in CHUNK ids, the same in every poll)."""
    return not zlib.crc32(server_id.encode("utf-8", "surrogatepass")) & (CHUNK - 1)


def chunks(servers: list[Server]) -> list[tuple[int, int]]:
    """The (start, end) rows of each chunk of ``servers``."""
    out: list[tuple[int, int]] = []
    start = 0
    for row in range(1, len(servers)):
        if row - start >= CHUNK_MOST or _cuts(servers[row].id):
            out.append((start, row))
            start = row
    if servers:
        out.append((start, len(servers)))
    return out


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
    are, in the region's compressed chunks, found by offset in the inflated chunk
    (``_spans``, per server and family: start in its chunk, then length; ``_chunk_of``,
    per server: its chunk). The parts it returns are the only copy of the region's lines.
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
        self._spans = array(SPAN)
        self._chunk_of = array(SPAN)
        self._starts: list[int] = []  # per chunk: its first row
        self._last: list[tuple[Part, ...]] | None = None  # per chunk: per family written
        self._out: tuple[tuple[Part, ...], ...] = ()  # per family: what render returned
        self.rendered = 0  # servers rendered by the last call, for tests and logs
        self.records: tuple[Server, ...] = ()  # the last call's servers, cached ones reused

    def render(
        self, servers: Iterable[Server], rackconnect: bool, managed: bool
    ) -> tuple[tuple[Part, ...], ...]:
        """Per family, its chunks of lines as parts; re-renders only servers that changed.

        When nothing changed (same servers, same order) it returns the very tuple it
        returned last time, so callers can skip work by identity; a chunk whose lines did
        not change is the very part of last time.
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
        last = self._last or []
        starts = self._starts if last else []
        firsts = {held[row].id: c for c, row in enumerate(starts)}  # an old chunk by its first
        built = _Built(len(self._writers))
        for start, end in chunks(servers):
            hit = hits[start]
            c = -1 if hit is None else self._chunk_of[hit]
            if (
                c >= 0
                and starts[c] == hit
                and _end(starts, c, len(held)) - hit == end - start
                and hits[start:end] == list(range(hit, hit + end - start))
            ):
                built.reuse(last[c], self._spans, hit, end - start)  # the same servers
                continue
            self._build(
                built,
                servers[start:end],
                hits[start:end],
                (rackconnect, managed),
                before=firsts.get(servers[start].id, -1),
                held=held if old else (),  # without old rows, old lines cannot be told
            )
        self._rows = {s.id: row for row, s in enumerate(servers)}
        self._spans, self._chunk_of, self._starts = built.spans, built.chunk_of, built.starts
        self._last = built.chunks
        out: list[tuple[Part, ...]] = [()] * len(self.families)
        for at, i in enumerate(active):
            out[i] = tuple(chunk[at] for chunk in built.chunks)
        self._out = tuple(out)
        return self._out

    def _build(
        self,
        built: _Built,
        servers: list[Server],
        hits: list[int | None],
        flags: tuple[bool, bool],
        *,
        before: int,
        held: tuple[Server, ...],
    ) -> None:
        """Adds a chunk, a part per family: cached lines sliced from old chunks, others rendered.

        A family of an old chunk is inflated only when lines are taken from it, once for
        this chunk. A family whose lines are those of the old chunk ``before`` (-1: none)
        keeps its part, most often known without inflating anything (``_kept``).
        """
        n = len(self._writers)
        width = built.width
        spans, chunk_of, last = self._spans, self._chunk_of, self._last or []
        fresh = {
            k: server_lines(servers[k], self._head, *flags, self._writers)
            for k, hit in enumerate(hits)
            if hit is None
        }
        kept = self._kept(servers, hits, fresh, before=before, held=held, flags=flags)
        views: dict[int, list[memoryview | None]] = {}

        def inflated(c: int, i: int) -> memoryview:
            family = views.setdefault(c, [None] * n)
            view = family[i]
            if view is None:
                view = family[i] = memoryview(last[c][i].plain())
            return view

        pieces: list[list[bytes | memoryview]] = [[] for _ in range(n)]
        offsets = [0] * n
        built.begin()
        for k, hit in enumerate(hits):
            if hit is not None:
                at = hit * width
                lengths = spans[at + n : at + width].tolist()
                c = chunk_of[hit]
                for i in range(n):
                    if lengths[i] and kept[i] is None:
                        start = spans[at + i]
                        pieces[i].append(inflated(c, i)[start : start + lengths[i]])
            else:
                lines = fresh[k]
                lengths = [len(f) for f in lines]
                for i in range(n):
                    if lengths[i]:
                        pieces[i].append(lines[i])
            built.row(offsets, lengths)
            for i in range(n):
                offsets[i] += lengths[i]
        parts = []
        for i, piece in enumerate(pieces):
            part = kept[i]
            if part is None:
                data = b"".join(piece)
                old = last[before][i] if before >= 0 else None
                # bytes == bytes is a memcmp; memoryview == bytes compares item by item
                if old is not None and len(old) == len(data) and inflated(before, i).obj == data:
                    part = old
                else:
                    part = Part(data)
            parts.append(part)
        built.chunks.append(tuple(parts))

    def _kept(
        self,
        servers: list[Server],
        hits: list[int | None],
        fresh: dict[int, list[bytes]],
        *,
        before: int,
        held: tuple[Server, ...],
        flags: tuple[bool, bool],
    ) -> list[Part | None]:
        """Per family, the old chunk's part where the new chunk's lines are the same.

        Told without inflating: the chunk has the old chunk's servers in the same order, and
        a changed server's lines for the family are those its old record rendered.
        """
        kept: list[Part | None] = [None] * len(self._writers)
        if before < 0 or not held:
            return kept
        first = self._starts[before]
        if _end(self._starts, before, len(held)) - first != len(servers):
            return kept
        for k, hit in enumerate(hits):
            row = first + k
            if hit is None:
                if servers[k].id != held[row].id:  # another server than the old chunk's
                    return kept
            elif hit != row:
                return kept
        same = [True] * len(kept)
        for k, lines in fresh.items():
            was = server_lines(held[first + k], self._head, *flags, self._writers)
            same = [s and a == b for s, a, b in zip(same, lines, was, strict=True)]
        old = (self._last or [])[before]
        return [p if s else None for p, s in zip(old, same, strict=True)]

    def _written(self, servers: list[Server]) -> tuple[int, ...]:
        """The families to write: all but those whose ``only_if`` no server passes."""
        conditions = {f.only_if for f in self.families if f.only_if is not None}
        passed = {c for c in conditions if any(map(c, servers))}
        return tuple(
            i for i, f in enumerate(self.families) if f.only_if is None or f.only_if in passed
        )


def _end(starts: list[int], chunk: int, rows: int) -> int:
    """The row after an old chunk's last."""
    return starts[chunk + 1] if chunk + 1 < len(starts) else rows


class _Built:
    """The chunks of a render as they are made, with their servers' spans."""

    def __init__(self, families: int) -> None:
        self.width = 2 * families
        self.spans = array(SPAN)
        self.chunk_of = array(SPAN)
        self.starts: list[int] = []  # per chunk: its first row
        self.chunks: list[tuple[Part, ...]] = []

    def begin(self) -> None:
        """Start a chunk at the next row."""
        self.starts.append(len(self.chunk_of))

    def row(self, offsets: list[int], lengths: list[int]) -> None:
        """One server's spans in the chunk being built."""
        self.spans.extend(offsets)
        self.spans.extend(lengths)
        self.chunk_of.append(len(self.starts) - 1)

    def reuse(self, parts: tuple[Part, ...], spans: array[int], row: int, count: int) -> None:
        """An old chunk as it was: the same servers in the same order."""
        self.begin()
        self.spans.extend(spans[row * self.width : (row + count) * self.width])
        self.chunk_of.extend([len(self.starts) - 1] * count)
        self.chunks.append(parts)
