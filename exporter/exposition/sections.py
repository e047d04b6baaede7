"""The whole exposition as a table of sections: the exporter's own families, then the regions'.

Each of the exporter's own families is one ``Section``: the family and the function that
gives its rows from what is being published (``Published``). The per-server and history
families come as each region rendered and compressed them; here they only get their
header. A snapshot is rendered once, never per scrape.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from exporter import __version__, revision
from exporter.durations import format_duration
from exporter.exposition.families import (
    ACCOUNT_INFO,
    API_REQUESTS,
    BUILD_INFO,
    CONFIG_RELOAD_OK,
    CONFIG_RELOAD_TIME,
    HISTORY_FAMILIES,
    LAST_SUCCESS,
    PER_SERVER_FAMILIES,
    POLL_DURATION,
    POLL_ERRORS,
    REGION_INFO,
    SHARD_ORDINAL,
    TOTAL_SHARDS,
    UP,
)
from exporter.exposition.families_v3 import V3_POLL_ERRORS, V3_POOL_INFO, V3_UP
from exporter.exposition.gzipparts import Part
from exporter.exposition.text import Family, ServerFamily, encode, labels, number
from exporter.model import AccountView, RegionView


@dataclass(frozen=True)
class Published:
    """What the exporter's own families are made of, for one snapshot."""

    accounts: list[AccountView]
    regions: list[tuple[str, RegionView]]  # (account, region) for every region
    errors: Mapping[tuple[str, str, str], int]
    v3_errors: Mapping[tuple[str, str, str], int]
    requests: Mapping[tuple[str, str, str, str], int]
    config_reload: tuple[bool, float | None] | None
    shard: tuple[int, int] | None  # (index, total) when sharding is on


Row = tuple[float, dict[str, str]]  # a value and its labels, in order


@dataclass(frozen=True)
class Section:
    """One of the exporter's own families and its rows; ``rows`` None leaves it out."""

    family: Family
    rows: Callable[[Published], Iterable[Row] | None]
    cached: bool = True  # the HELP text says the values are refreshed every poll


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _build(_: Published) -> list[Row]:
    build = {
        "version": __version__,
        "revision": revision(),
        "python_version": platform.python_version(),
    }
    return [(1, build)]


def _reload_ok(p: Published) -> list[Row] | None:
    return None if p.config_reload is None else [(int(p.config_reload[0]), {})]


def _reload_time(p: Published) -> list[Row] | None:
    when = None if p.config_reload is None else p.config_reload[1]
    return None if when is None else [(when, {})]


def _accounts(p: Published) -> Iterable[Row]:
    return (
        (
            1,
            {
                "account": a.name,
                "tenant_id": a.tenant_id,
                "rackconnect": _bool(a.rackconnect),
                "managed": _bool(a.managed),
            },
        )
        for a in p.accounts
        if a.known
    )


def _regions(p: Published) -> Iterable[Row]:
    return (
        (
            1,
            {
                "account": a.name,
                "region": r.region,
                "rackconnect": _bool(a.expects_rackconnect(r.region)),
            },
        )
        for a in p.accounts
        if a.known
        for r in a.regions
        if r.region
    )


def _up(p: Published) -> Iterable[Row]:
    return ((int(r.up), {"account": a, "region": r.region}) for a, r in p.regions)


def _last_success(p: Published) -> Iterable[Row]:
    return (
        (r.last_success, {"account": a, "region": r.region})
        for a, r in p.regions
        if r.last_success is not None
    )


def _duration(p: Published) -> Iterable[Row]:
    return (
        (r.duration, {"account": a, "region": r.region})
        for a, r in p.regions
        if r.duration is not None
    )


def _errors(p: Published) -> Iterable[Row]:
    return _counts(p.errors)


def _v3_errors(p: Published) -> Iterable[Row] | None:
    return _counts(p.v3_errors) if p.v3_errors else None


def _counts(errors: Mapping[tuple[str, str, str], int]) -> Iterable[Row]:
    return (
        (n, {"account": a, "region": r, "reason": reason})
        for (a, r, reason), n in sorted(errors.items())
    )


def _requests(p: Published) -> Iterable[Row]:
    return (
        (n, {"account": a, "region": r, "api": api, "code": code})
        for (a, r, api, code), n in sorted(p.requests.items())
    )


def _v3_up(p: Published) -> list[Row] | None:
    rows: list[Row] = [
        (int(r.v3_up), {"account": a, "region": r.region})
        for a, r in p.regions
        if r.v3_up is not None
    ]
    return rows or None


def _v3_pools(p: Published) -> list[Row] | None:
    rows: list[Row] = [
        (
            1,
            {
                "account": a,
                "region": r.region,
                "pool_id": pool.id,
                "name": pool.name,
                "port": "" if pool.port is None else str(pool.port),
                "virtual_ip": pool.virtual_ip,
            },
        )
        for a, r in p.regions
        for pool in r.pools
    ]
    return rows or None


SECTIONS = (
    Section(BUILD_INFO, _build, cached=False),
    Section(CONFIG_RELOAD_OK, _reload_ok, cached=False),
    Section(CONFIG_RELOAD_TIME, _reload_time, cached=False),
    Section(ACCOUNT_INFO, _accounts),
    Section(REGION_INFO, _regions),
    Section(UP, _up),
    Section(LAST_SUCCESS, _last_success),
    Section(POLL_DURATION, _duration),
    Section(POLL_ERRORS, _errors),
    Section(API_REQUESTS, _requests),
    Section(V3_UP, _v3_up),
    Section(V3_POLL_ERRORS, _v3_errors),
    Section(V3_POOL_INFO, _v3_pools),
)
"""The exporter's own families, in the order of the exposition, before the regions' parts."""


def _shard_ordinal(p: Published) -> list[Row] | None:
    return None if p.shard is None else [(p.shard[0], {"shard_ordinal": str(p.shard[0])})]


def _total_shards(p: Published) -> list[Row] | None:
    return None if p.shard is None else [(p.shard[1], {})]


LAST_SECTIONS = (Section(SHARD_ORDINAL, _shard_ordinal), Section(TOTAL_SHARDS, _total_shards))
"""The exporter's own families after the regions' parts: this replica's shard."""


def sample(family: Family, value: float, **pairs: str) -> str:
    """One line of ``family``: its name, the labels in the order given, the value."""
    if pairs:
        return f"{family.name}{{{labels(**pairs)}}} {number(value)}\n"
    return f"{family.name} {number(value)}\n"


def render_parts(
    accounts: Iterable[AccountView],
    *,
    errors: Mapping[tuple[str, str, str], int],
    requests: Mapping[tuple[str, str, str, str], int],
    interval: float,
    openmetrics: bool,
    v3_errors: Mapping[tuple[str, str, str], int] | None = None,
    config_reload: tuple[bool, float | None] | None = None,
    server_families: tuple[ServerFamily, ...] = PER_SERVER_FAMILIES,
    shard: tuple[int, int] | None = None,
) -> list[bytes | Part]:
    """The exposition as a list of parts: each region's rendered parts are used as they are.

    Each region's parts are its ``server_families``, then its history families, each family
    a tuple of chunks (or one part). ``shard`` (index, total) adds the shard families.
    """
    note = f"Cached: refreshed every poll interval ({format_duration(interval)})."
    accounts = list(accounts)
    published = Published(
        accounts,
        [(a.name, r) for a in accounts for r in a.regions],
        errors,
        v3_errors or {},
        requests,
        config_reload,
        shard,
    )
    chunks: list[bytes | Part] = []
    _add_sections(chunks, SECTIONS, published, openmetrics, note)
    fragments = [r.parts for _, r in published.regions if r.parts]
    written = ""
    for i, family in enumerate((*server_families, *HISTORY_FAMILIES)):
        parts = [p for f in fragments if i < len(f) for p in _chunks(f[i])]
        if isinstance(family, ServerFamily) and family.only_if and not any(map(len, parts)):
            continue
        if family.name != written:  # a family written in runs has one header
            chunks.append(family.header(openmetrics, note))
            written = family.name
        chunks.extend(parts)
    _add_sections(chunks, LAST_SECTIONS, published, openmetrics, note)
    if openmetrics:
        chunks.append(b"# EOF\n")
    return chunks


def _chunks(family: bytes | Part | tuple[bytes | Part, ...]) -> tuple[bytes | Part, ...]:
    """A region's family as the chunks it is cut into (a history family is one)."""
    return family if isinstance(family, tuple) else (family,)


def _add_sections(
    chunks: list[bytes | Part],
    sections: Iterable[Section],
    published: Published,
    openmetrics: bool,
    note: str,
) -> None:
    for section in sections:
        rows = section.rows(published)
        if rows is None:
            continue
        family = section.family
        chunks.append(family.header(openmetrics, note if section.cached else ""))
        chunks.append(encode("".join(sample(family, value, **pairs) for value, pairs in rows)))
