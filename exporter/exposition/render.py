"""Snapshot -> exposition bytes, in the Prometheus text format and in OpenMetrics.

Rendering happens once per published snapshot, never per scrape. Each server's lines are
cached and re-rendered only when that server's record changes, so a poll that changes
little costs little (the kube-state-metrics approach).
"""

from __future__ import annotations

import operator
import platform
from array import array
from collections.abc import Iterable, Mapping

from prometheus_client.utils import floatToGoString

from exporter import __version__, revision
from exporter.durations import format_duration
from exporter.exposition.families import (
    ACCOUNT_INFO,
    API_REQUESTS,
    AUTOMATION_STATUS,
    BUILD_INFO,
    CONFIG_RELOAD_OK,
    CONFIG_RELOAD_TIME,
    FEATURE_ENABLED,
    HISTORY_FAMILIES,
    LAST_SUCCESS,
    MANAGED_STATUS,
    PER_SERVER_FAMILIES,
    POLL_DURATION,
    POLL_ERRORS,
    REGION_INFO,
    SERVER_CREATED,
    SERVER_INFO,
    SERVER_READY,
    SERVER_STATUS,
    UNPROCESSABLE_INFO,
    UP,
    Family,
    escape_label,
    labels,
)
from exporter.exposition.gzipparts import Part
from exporter.model import (
    AUTOMATION_STATUSES,
    FEATURE_KEYS,
    MANAGED_STATUSES,
    AccountView,
    Server,
)


def _num(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return floatToGoString(value)


def _encode(text: str) -> bytes:
    # Lone surrogates can come from JSON escapes in upstream data: they become "?".
    return text.encode("utf-8", "replace")


def _state_lines(statuses: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Current status -> the tail of every line of the state set, after the labels."""
    return {
        current: tuple(f',status="{s}"}} {int(s == current)}\n' for s in statuses)
        for current in statuses
    }


_AUTOMATION_LINES = _state_lines(AUTOMATION_STATUSES)
_MANAGED_LINES = _state_lines(MANAGED_STATUSES)


def _feature_line(feature: str, on: bool) -> str:
    return f',feature="{escape_label(feature)}"}} {int(on)}\n'


_FEATURE_LINES = {(f, on): _feature_line(f, on) for f in FEATURE_KEYS for on in (False, True)}


def render_server(server: Server, account: str, region: str, rackconnect: bool, managed: bool):
    """One server's lines, one bytes fragment per family of PER_SERVER_FAMILIES."""
    # Lines of one family share everything up to the last label: "prefix + tail" each.
    head = (
        f'{{account="{escape_label(account)}",region="{escape_label(region)}",'
        f'server_id="{escape_label(server.id)}"'
    )
    extra = "".join(f',{label}="{escape_label(value)}"' for label, value in server.labels)
    info = (
        f'{SERVER_INFO.name}{head},name="{escape_label(server.name)}",'
        f'generation="{server.generation}"{extra}}} 1\n'
    )
    created = (
        "" if server.created is None else f"{SERVER_CREATED.name}{head}}} {_num(server.created)}\n"
    )
    automation = ""
    if server.automation_status is not None:
        prefix = AUTOMATION_STATUS.name + head
        automation = prefix + prefix.join(_AUTOMATION_LINES[server.automation_status])
    features = ""
    if server.features:
        prefix = FEATURE_ENABLED.name + head
        features = prefix + prefix.join(
            _FEATURE_LINES.get((f, on)) or _feature_line(f, on) for f, on in server.features
        )
    operations = ""
    if server.managed_status is not None:
        prefix = MANAGED_STATUS.name + head
        operations = prefix + prefix.join(_MANAGED_LINES[server.managed_status])
    reason = (
        ""
        if server.unprocessable_reason is None
        else f"{UNPROCESSABLE_INFO.name}{head},"
        f'reason="{escape_label(server.unprocessable_reason)}"}} 1\n'
    )
    nova = ""
    if server.status is not None:
        nova = f'{SERVER_STATUS.name}{head},status="{escape_label(server.status)}"}} 1\n'
    ready = f"{SERVER_READY.name}{head}}} {int(server.ready(rackconnect, managed))}\n"
    return (
        _encode(info),
        _encode(created),
        _encode(automation),
        _encode(features),
        _encode(operations),
        _encode(reason),
        _encode(nova),
        _encode(ready),
    )


_FAMILIES = len(PER_SERVER_FAMILIES)


class RegionRenderer:
    """Renders the per-server families of one account and region, caching per server.

    A server's cached lines are not kept as separate strings: they are where they already
    are, in the region's joined fragments, found by offset (``_spans``, per server and
    family: start, then length). That halves the memory of a large fleet.
    """

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self._rows: dict[str, int] = {}  # server id -> its row in records and _spans
        self._flags: tuple[bool, bool] | None = None  # the account's, when last rendered
        self._spans = array("Q")
        self._last: tuple[bytes, ...] | None = None
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
            return self._last
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
            return self._last
        last = self._last or (b"",) * _FAMILIES
        views = [memoryview(b) for b in last]
        spans = self._spans
        width = 2 * _FAMILIES

        def cached(row: int) -> tuple[memoryview, ...]:
            at = row * width
            return tuple(
                views[i][spans[at + i] : spans[at + i] + spans[at + _FAMILIES + i]]
                for i in range(_FAMILIES)
            )

        # Same servers in the same order: a family whose lines did not change is kept as
        # it is (so is its compressed part), instead of being joined again.
        keep = [False] * _FAMILIES
        fresh: dict[int, tuple[bytes, ...]] = {}
        if self._last is not None and [s.id for s in servers] == list(old):
            keep = [True] * _FAMILIES
            for row, (server, hit) in enumerate(zip(servers, hits, strict=True)):
                if hit is None:
                    piece = fresh[row] = render_server(
                        server, self.account, self.region, rackconnect, managed
                    )
                    before = cached(old[server.id])
                    keep = [k and piece[i] == before[i] for i, k in enumerate(keep)]
        # Each family is one exact-size join of its pieces: neighbouring cached rows are one
        # slice of the old buffer (a run), neighbouring fresh rows one growing bytearray, so
        # the pieces stay few and no small byte string outlives its row.
        pieces: list[list[bytes | bytearray | memoryview]] = [[] for _ in range(_FAMILIES)]
        runs = [[0, 0] for _ in range(_FAMILIES)]  # per family: the open run's start, end
        tails: list[bytearray | None] = [None] * _FAMILIES  # per family: the open fresh rows
        rows: dict[str, int] = {}
        new_spans = array("Q")
        offsets = [0] * _FAMILIES
        for row, (server, hit) in enumerate(zip(servers, hits, strict=True)):
            if hit is not None:
                at = hit * width
                lengths = spans[at + _FAMILIES : at + width].tolist()
                for i in range(_FAMILIES):
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
                lines = fresh.get(row) or render_server(
                    server, self.account, self.region, rackconnect, managed
                )
                lengths = [len(f) for f in lines]
                for i in range(_FAMILIES):
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
            for i in range(_FAMILIES):
                offsets[i] += lengths[i]
            rows[server.id] = row
        joined_list = []
        for i in range(_FAMILIES):
            run = runs[i]
            if run[1] > run[0]:
                pieces[i].append(views[i][run[0] : run[1]])
            joined_list.append(last[i] if keep[i] else b"".join(pieces[i]))
            pieces[i], tails[i] = [], None  # one family's pieces at a time
        joined = tuple(joined_list)
        self._rows, self._spans, self._last = rows, new_spans, joined
        return joined


def sample(family: Family, value: float, **pairs: str) -> str:
    """One line of ``family``: its name, the labels in the order given, the value."""
    return (
        f"{family.name}{{{labels(**pairs)}}} {_num(value)}\n"
        if pairs
        else (f"{family.name} {_num(value)}\n")
    )


def render_parts(
    accounts: Iterable[AccountView],
    *,
    errors: Mapping[tuple[str, str, str], int],
    requests: Mapping[tuple[str, str, str, str], int],
    interval: float,
    openmetrics: bool,
    config_reload: tuple[bool, float | None] | None = None,
    extra: Iterable[tuple[Family, bytes]] = (),
) -> list[bytes | Part]:
    """The exposition as a list of parts: each region's rendered parts are used as they are.

    ``extra`` adds families of one mode only (the agent's), after the per-server ones.
    """
    note = f"Cached: refreshed every poll interval ({format_duration(interval)})."
    chunks: list[bytes | Part] = []

    def family(fam: Family, body: str | bytes, cached: bool = True) -> None:
        chunks.append(fam.header(openmetrics, note if cached else ""))
        chunks.append(_encode(body) if isinstance(body, str) else body)

    build = {
        "version": __version__,
        "revision": revision(),
        "python_version": platform.python_version(),
    }
    family(BUILD_INFO, sample(BUILD_INFO, 1, **build), cached=False)
    if config_reload is not None:
        ok, when = config_reload
        family(CONFIG_RELOAD_OK, sample(CONFIG_RELOAD_OK, int(ok)), cached=False)
        if when is not None:
            family(CONFIG_RELOAD_TIME, sample(CONFIG_RELOAD_TIME, when), cached=False)
    accounts = list(accounts)
    family(
        ACCOUNT_INFO,
        "".join(
            sample(
                ACCOUNT_INFO,
                1,
                account=a.name,
                tenant_id=a.tenant_id,
                rackconnect=_bool(a.rackconnect),
                managed=_bool(a.managed),
            )
            for a in accounts
            if a.known
        ),
    )
    regions = [(a.name, r) for a in accounts for r in a.regions]
    family(
        REGION_INFO,
        "".join(
            sample(
                REGION_INFO,
                1,
                account=a.name,
                region=r.region,
                rackconnect=_bool(a.expects_rackconnect(r.region)),
            )
            for a in accounts
            if a.known
            for r in a.regions
            if r.region
        ),
    )
    family(UP, "".join(sample(UP, int(r.up), account=a, region=r.region) for a, r in regions))
    family(
        LAST_SUCCESS,
        "".join(
            sample(LAST_SUCCESS, r.last_success, account=a, region=r.region)
            for a, r in regions
            if r.last_success is not None
        ),
    )
    family(
        POLL_DURATION,
        "".join(
            sample(POLL_DURATION, r.duration, account=a, region=r.region)
            for a, r in regions
            if r.duration is not None
        ),
    )
    family(
        POLL_ERRORS,
        "".join(
            sample(POLL_ERRORS, n, account=a, region=r, reason=reason)
            for (a, r, reason), n in sorted(errors.items())
        ),
    )
    family(
        API_REQUESTS,
        "".join(
            sample(API_REQUESTS, n, account=a, region=r, api=api, code=code)
            for (a, r, api, code), n in sorted(requests.items())
        ),
    )
    # Each region's parts: its per-server families, then its history families.
    fragments = [r.parts for _, r in regions if r.parts]
    for i, fam in enumerate((*PER_SERVER_FAMILIES, *HISTORY_FAMILIES)):
        chunks.append(fam.header(openmetrics, note))
        chunks.extend(f[i] for f in fragments if i < len(f))
    for fam, body in extra:
        family(fam, body)
    if openmetrics:
        chunks.append(b"# EOF\n")
    return chunks


def _bool(value: bool) -> str:
    return "true" if value else "false"
