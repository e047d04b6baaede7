"""The RackConnect v3.0 API, under ``/{region}/rackconnect/v3/{tenant}/``.

Shapes follow the API documentation and the getting-started article (see
rackconnect-v3.md). What the published answers show, the simulator does too: timestamps
without a zone (UTC) and with the millisecond digits' trailing zeros dropped
(``...54.45``); ``GET public_ips?cloud_server_id=`` for a server without a public IP
answers 200 with no body at all; statuses are served exactly as stored, so a status set
through the control API as ``" active "`` arrives that way.
"""

from __future__ import annotations

import collections
import json
import re
import time
from typing import TYPE_CHECKING

from exporter.simulator.rcv3 import POOL_NODE, PUBLIC_IP, Network, Pool, RackConnectV3, Resource
from exporter.simulator.records import Server
from exporter.simulator.web import Reply, Request, json_reply, text_reply

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator

PATH = re.compile(r"^/([a-z]{3})/rackconnect/v3/([^/]+)/(.*?)/?$")
_POOL = re.compile(r"^load_balancer_pools/([^/]+)(?:/nodes(?:/(details|[^/]+))?)?$")


def timestamp(ts: float) -> str:
    """``2014-09-12T13:26:54.45``: no zone, milliseconds without trailing zeros."""
    millis = f"{round(ts * 1000) % 1000:03d}".rstrip("0")
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts)))
    return f"{base}.{millis}" if millis else base


def _maybe(ts: float | None) -> str | None:
    return None if ts is None else timestamp(ts)


class _Docs:
    """Documents of one account's region."""

    def __init__(self, sim: Simulator, state: RackConnectV3, account: str, region: str) -> None:
        self.sim, self.state, self.key = sim, state, (account, region)
        self.network: Network = state.networks[self.key]
        self.pools: dict[str, Pool] = {p.id: p for p in state.pools[self.key]}
        self.members = collections.Counter(r.pool_id for r in self.nodes())

    def server(self, server_id: str) -> dict:
        s: Server = self.sim.fleet.by_id[server_id]
        net = self.network
        return {
            "cloud_network": {
                "cidr": net.cidr,
                "created": timestamp(net.created),
                "id": net.id,
                "name": net.name,
                "private_ip_v4": self.state.private_ip(s),
                "updated": timestamp(net.updated),
            },
            "created": timestamp(s.created),
            "id": s.id,
            "name": s.name,
            "updated": timestamp(s.updated),
        }

    def public_ip(self, r: Resource) -> dict:
        return {
            "created": timestamp(r.created),
            "cloud_server": self.server(r.server_id),
            "id": r.id,
            "public_ip_v4": r.address,
            "status": r.status,
            "status_detail": r.status_detail,
            "updated": _maybe(r.updated),
        }

    def pool(self, p: Pool) -> dict:
        servers = self.members[p.id]
        return {
            "id": p.id,
            "name": p.name,
            "node_counts": {
                "cloud_servers": servers,
                "external": p.external,
                "total": servers + p.external,
            },
            "port": p.port,
            "status": "ACTIVE",
            "status_detail": None,
            "virtual_ip": p.virtual_ip,
        }

    def node(self, r: Resource, details: bool = False) -> dict:
        assert r.pool_id is not None
        return {
            "created": timestamp(r.created),
            "cloud_server": self.server(r.server_id) if details else {"id": r.server_id},
            "id": r.id,
            "load_balancer_pool": self.pool(self.pools[r.pool_id])
            if details
            else {"id": r.pool_id},
            "status": r.status,
            "status_detail": r.status_detail,
            "updated": _maybe(r.updated),
        }

    def network_doc(self) -> dict:
        net = self.network
        return {
            "cidr": net.cidr,
            "created": timestamp(net.created),
            "id": net.id,
            "name": net.name,
            "updated": timestamp(net.updated),
        }

    def ips(self) -> list[Resource]:
        return self.state.listing(*self.key, PUBLIC_IP)

    def nodes(self) -> list[Resource]:
        return self.state.listing(*self.key, POOL_NODE)


def _not_found() -> Reply:
    return text_reply(404, "Not Found")


def _server_of(sim: Simulator, req: Request, docs: _Docs) -> Server | str:
    """The server a POST names, or why the body is refused."""
    try:
        body = json.loads(req.body or b"null")
        server_id = body["cloud_server"]["id"]
    except (ValueError, TypeError, KeyError):
        return 'expected {"cloud_server": {"id": SERVER_ID}}'
    account, region = docs.key
    server = sim.fleet.find(sim.fleet.accounts[account], region, str(server_id))
    return server if server is not None else f"no cloud server {server_id!r} in {region}"


def handle(
    sim: Simulator, req: Request, account: str, region: str, rest: str, *, mangle: bool
) -> Reply:
    """Answer one v3.0 request of an authenticated account in one of its v3.0 regions."""
    state = sim.rcv3
    with sim.fleet.lock:
        state.settle_all()
        docs = _Docs(sim, state, account, region)
        reply = _route(sim, req, docs, rest)
    if mangle and reply.status == 200 and reply.body:
        # Wrong types: ids and statuses as numbers.
        data = json.loads(reply.body)
        for item in data if isinstance(data, list) else [data]:
            item.update({k: 7 for k in ("id", "status") if k in item})
        reply = json_reply(200, data)
    return reply


def _route(sim: Simulator, req: Request, docs: _Docs, rest: str) -> Reply:
    method = req.method
    if rest == "public_ips" and method == "GET":
        wanted = req.param("cloud_server_id")
        ips = [r for r in docs.ips() if wanted is None or r.server_id == wanted]
        if wanted is not None and not ips:
            return Reply(200, b"")  # no public IP: 200 without any JSON, as upstream does
        return json_reply(200, [docs.public_ip(r) for r in ips])
    if rest == "public_ips" and method == "POST":
        return _add(sim, req, docs, PUBLIC_IP, None)
    if rest.startswith("public_ips/"):
        wanted_id = rest[len("public_ips/") :]
        return _one(docs, method, [r for r in docs.ips() if r.id == wanted_id])
    if rest == "load_balancer_pools" and method == "GET":
        return json_reply(200, [docs.pool(p) for p in docs.pools.values()])
    if rest == "load_balancer_pools/nodes/details" and method == "GET":
        wanted = req.param("cloud_server_id")
        nodes = [r for r in docs.nodes() if wanted is None or r.server_id == wanted]
        return json_reply(200, [docs.node(r, details=True) for r in nodes])
    if rest == "cloud_networks" and method == "GET":
        return json_reply(200, [docs.network_doc()])
    if rest == f"cloud_networks/{docs.network.id}" and method == "GET":
        return json_reply(200, docs.network_doc())
    match = _POOL.match(rest)
    if match is None or match.group(1) not in docs.pools:
        return _not_found()
    pool, sub = docs.pools[match.group(1)], match.group(2)
    in_pool = [r for r in docs.nodes() if r.pool_id == pool.id]
    if rest.endswith("/nodes") and method == "POST":
        return _add(sim, req, docs, POOL_NODE, pool.id)
    if method != "GET" and not (method == "DELETE" and sub not in (None, "details")):
        return text_reply(405, "Method Not Allowed")
    if not rest.endswith("/nodes") and sub is None:
        return json_reply(200, docs.pool(pool))
    if sub is None:
        return json_reply(200, [docs.node(r) for r in in_pool])
    if sub == "details":
        return json_reply(200, [docs.node(r, details=True) for r in in_pool])
    return _one(docs, method, [r for r in in_pool if r.id == sub])


def _add(sim: Simulator, req: Request, docs: _Docs, kind: str, pool_id: str | None) -> Reply:
    """A POST: the new resource, ``ADDING``, with 201."""
    server = _server_of(sim, req, docs)
    if isinstance(server, str):
        return text_reply(400, server)
    added = docs.state.add(server, kind, pool_id)
    return json_reply(201, docs.public_ip(added) if kind == PUBLIC_IP else docs.node(added))


def _one(docs: _Docs, method: str, found: list[Resource]) -> Reply:
    """GET or DELETE (204, then ``REMOVING``) of one resource."""
    if not found:
        return _not_found()
    if method == "DELETE":
        docs.state.remove(found[0].id)
        return Reply(204, b"", [], None)
    res = found[0]
    return json_reply(200, docs.public_ip(res) if res.kind == PUBLIC_IP else docs.node(res))
