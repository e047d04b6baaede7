"""RackConnect v3.0: read a region's public IPs, load balancer pools and pool nodes.

v3.0 keeps no server metadata; each region with a ``rax:rackconnect`` catalog entry has
its own API (``https://{region}.rackconnect.api.rackspacecloud.com/v3/{tenant}/``). Its
published answers are read as they are:

- timestamps come without a zone (``2014-09-12T14:24:58.713``): they are UTC;
- ``GET public_ips?cloud_server_id=`` for a server without a public IP answers 200 with
  no body at all: that is an empty list;
- statuses are trimmed and compared case-insensitively; anything but the five known
  states is ``UNKNOWN``.

A document that is not what the API documents raises ``UpstreamError`` (bad_response)
saying where and what.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode

import msgspec

from exporter.errors import BAD_RESPONSE, UpstreamError
from exporter.model import parse_timestamp
from exporter.model_v3 import V3_STATES, Pool, PoolNode, PublicIp
from exporter.rackspace.client import OK_STATUSES, Answer, ApiClient, check_status, strip_query

API = "rackconnect_v3"
CATALOG_TYPE = "rax:rackconnect"
STATES = V3_STATES
UNKNOWN = "UNKNOWN"
_STATES = {word: word for word in STATES}  # each item's status is one of these strings


def state(value: object) -> str:
    """A status as one of STATES, or UNKNOWN: trimmed, any case."""
    if isinstance(value, str):
        return _STATES.get(value.strip().upper(), UNKNOWN)
    return UNKNOWN


def _detail(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


# --- the documents as the API sends them -------------------------------------------------


class _Ref(msgspec.Struct):
    id: str


class _RawPublicIp(msgspec.Struct):
    id: str
    cloud_server: _Ref
    public_ip_v4: str | None = None
    status: Any = None
    status_detail: Any = None
    created: Any = None
    updated: Any = None


class _RawPool(msgspec.Struct):
    id: str
    name: str | None = None
    port: int | None = None
    virtual_ip: str | None = None
    status: Any = None


class _RawNode(msgspec.Struct):
    id: str
    cloud_server: _Ref
    load_balancer_pool: _Ref | None = None
    status: Any = None
    status_detail: Any = None
    created: Any = None
    updated: Any = None


_Raw = TypeVar("_Raw", _RawPublicIp, _RawPool, _RawNode)
_Item = TypeVar("_Item", PublicIp, Pool, PoolNode)
# A listing is an array; one resource (``GET public_ips/{id}``, a POST's answer) an object.
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(list[kind] | kind)  # type: ignore[valid-type]
    for kind in (_RawPublicIp, _RawPool, _RawNode)
}


def _decode(body: bytes, kind: type[_Raw], where: str) -> list[_Raw]:
    if not body.strip():
        return []  # upstream's 200 without any JSON: nothing there
    try:
        decoded = _DECODERS[kind].decode(body)
        items: list[_Raw] = decoded if isinstance(decoded, list) else [decoded]
    except msgspec.ValidationError as exc:
        raise UpstreamError(BAD_RESPONSE, f"{where}: unexpected document: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise UpstreamError(BAD_RESPONSE, f"{where}: body is not valid JSON") from exc
    return items


def parse_public_ips(body: bytes, where: str = "public_ips") -> list[PublicIp]:
    """The public IPs of a ``GET public_ips`` answer (or of one public IP's document)."""
    return [
        PublicIp(
            id=raw.id,
            server_id=raw.cloud_server.id,
            address=raw.public_ip_v4 or "",
            status=state(raw.status),
            status_detail=_detail(raw.status_detail),
            created=parse_timestamp(raw.created),
            updated=parse_timestamp(raw.updated),
        )
        for raw in _decode(body, _RawPublicIp, where)
    ]


def parse_pools(body: bytes, where: str = "load_balancer_pools") -> list[Pool]:
    """The pools of a ``GET load_balancer_pools`` answer."""
    return [
        Pool(
            id=raw.id,
            name=raw.name or "",
            port=raw.port,
            virtual_ip=raw.virtual_ip or "",
            status=state(raw.status),
        )
        for raw in _decode(body, _RawPool, where)
    ]


def parse_pool_nodes(
    body: bytes, pool_id: str | None = None, where: str = "load_balancer_pools/nodes"
) -> list[PoolNode]:
    """The nodes of a ``GET load_balancer_pools/{pool_id}/nodes`` (or ``/details``) answer.

    A node without its own ``load_balancer_pool`` belongs to ``pool_id``.
    """
    nodes = []
    for raw in _decode(body, _RawNode, where):
        pool = raw.load_balancer_pool.id if raw.load_balancer_pool is not None else pool_id
        if pool == pool_id:
            pool = pool_id  # one string for the pool's every node, not one each
        if pool is None:
            raise UpstreamError(BAD_RESPONSE, f"{where}: node {raw.id!r} names no pool")
        nodes.append(
            PoolNode(
                id=raw.id,
                pool_id=pool,
                server_id=raw.cloud_server.id,
                status=state(raw.status),
                status_detail=_detail(raw.status_detail),
                created=parse_timestamp(raw.created),
                updated=parse_timestamp(raw.updated),
            )
        )
    return nodes


# --- reading a region through the client -------------------------------------------------


class RegionState(msgspec.Struct, frozen=True, gc=False):
    """What one poll of a region's v3.0 API read."""

    public_ips: list[PublicIp]
    pools: list[Pool]
    nodes: list[PoolNode]


def endpoints(catalog: object) -> dict[str, str]:
    """``{region: URL}`` of the ``rax:rackconnect`` entries of an Identity v2.0 catalog.

    The entry's name varies (Rackspace's own mock says ``rackConnect`` in one place and
    ``rackconnect`` in another); its type does not.
    """
    found: dict[str, str] = {}
    for service in catalog if isinstance(catalog, list) else ():
        if not isinstance(service, dict) or service.get("type") != CATALOG_TYPE:
            continue
        for endpoint in service.get("endpoints") or ():
            if not isinstance(endpoint, dict):
                continue
            region, url = endpoint.get("region"), endpoint.get("publicURL")
            if isinstance(region, str) and isinstance(url, str) and url:
                found.setdefault(region.upper(), url.rstrip("/"))
    return found


class Tokens(Protocol):
    """An account's token cache: sends a request with its token, again once after a 401."""

    def send(self, request: Callable[[str], Answer]) -> Answer:
        """``request(token)``, re-authenticating once on 401."""
        ...


Seen = dict[str, tuple[bytes, list[Any]]]
"""What a reader parsed per URL, with the digest of the body it parsed."""


def _get(
    client: ApiClient,
    url: str,
    token: str | Tokens,
    region: str,
    parse: Callable[[bytes, str], list[_Item]],
    *,
    params: dict[str, str] | None = None,
    seen: Seen | None = None,
) -> list[_Item]:
    """GET and parse; with ``seen``, a body whose digest is as last time is not parsed again."""

    def send(value: str) -> Answer:
        return client.fetch(
            "GET", url, api=API, region=region, headers={"X-Auth-Token": value}, params=params
        )

    answer = send(token) if isinstance(token, str) else token.send(send)
    where = f"GET {strip_query(url)}"
    if answer.status_code not in OK_STATUSES:
        check_status(answer.loaded(), "GET", url)
    key = url + "?" + urlencode(params) if params else url
    if seen is not None and key in seen and seen[key][0] == answer.digest:
        return seen[key][1]
    items = parse(answer.join(), where)
    if seen is not None:
        if key in seen:  # items as they were are last time's objects: one copy is held
            known = {item: item for item in seen[key][1]}
            items = [known.get(item, item) for item in items]
        seen[key] = (answer.digest, items)
    return items


def fetch_public_ips(
    client: ApiClient,
    base: str,
    token: str | Tokens,
    region: str,
    server_id: str | None = None,
    *,
    seen: Seen | None = None,
) -> list[PublicIp]:
    """The region's public IPs (or one server's)."""
    params = {"cloud_server_id": server_id} if server_id is not None else None
    return _get(
        client, f"{base}/public_ips", token, region, parse_public_ips, params=params, seen=seen
    )


def fetch_pools(
    client: ApiClient, base: str, token: str | Tokens, region: str, seen: Seen | None = None
) -> list[Pool]:
    """The region's load balancer pools."""
    return _get(client, f"{base}/load_balancer_pools", token, region, parse_pools, seen=seen)


def fetch_pool_nodes(
    client: ApiClient,
    base: str,
    token: str | Tokens,
    region: str,
    pool_id: str,
    *,
    seen: Seen | None = None,
) -> list[PoolNode]:
    """The nodes of one load balancer pool."""
    url = f"{base}/load_balancer_pools/{quote(pool_id, safe='')}/nodes"
    return _get(client, url, token, region, lambda b, w: parse_pool_nodes(b, pool_id, w), seen=seen)


def fetch_region(
    client: ApiClient, base: str, token: str | Tokens, region: str, seen: Seen | None = None
) -> RegionState:
    """Everything a poll reads: public IPs, pools and each pool's nodes.

    ``seen`` (kept by the caller between polls) spares parsing answers that did not change:
    they give the very lists of last time.
    """
    pools = fetch_pools(client, base, token, region, seen)
    nodes = [
        node
        for pool in pools
        for node in fetch_pool_nodes(client, base, token, region, pool.id, seen=seen)
    ]
    if seen is not None:  # forget the pools that are gone
        keep = {f"{base}/load_balancer_pools/{quote(p.id, safe='')}/nodes" for p in pools}
        for key in [k for k in seen if k.endswith("/nodes") and k not in keep]:
            del seen[key]
    return RegionState(fetch_public_ips(client, base, token, region, seen=seen), pools, nodes)


class ServerState(msgspec.Struct, frozen=True, gc=False):
    """One cloud server's public IPs and load balancer pool memberships."""

    public_ips: list[PublicIp]
    nodes: list[PoolNode]


def fetch_server(
    client: ApiClient, base: str, tokens: str | Tokens, region: str, server_id: str
) -> ServerState:
    """One server's public IPs and pool memberships: two requests, whatever the fleet's size."""
    ips = fetch_public_ips(client, base, tokens, region, server_id)
    nodes = _get(
        client,
        f"{base}/load_balancer_pools/nodes/details",
        tokens,
        region,
        lambda b, w: parse_pool_nodes(b, where=w),
        params={"cloud_server_id": server_id},
    )
    return ServerState(
        [ip for ip in ips if ip.server_id == server_id],
        [node for node in nodes if node.server_id == server_id],
    )
