"""RackConnect v3.0 state: public IPs, load balancer pools and their nodes, per v3.0 region.

v3.0 keeps nothing in server metadata; each region's RackConnect API holds the state. A
resource added answers ``ADDING`` and settles ``settle_seconds`` later into its outcome
(``ACTIVE``, or ``ADD_FAILED`` with a ``status_detail``); removing goes through
``REMOVING`` and the resource disappears (or ends ``REMOVE_FAILED``). Settling is worked out
from the clock whenever the state is read, so no thread is needed and a test's clock rules.

Servers the scenario starts with and servers the churn creates get a public IP and a pool
membership of their own; servers made through the control API get only what is asked.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from exporter.simulator.fleet import Fleet
from exporter.simulator.records import Server

STATES = ("ADDING", "ACTIVE", "REMOVING", "ADD_FAILED", "REMOVE_FAILED")
REMOVED = "REMOVED"  # an outcome: the resource is gone once settled
PUBLIC_IP = "public_ip"
POOL_NODE = "pool_node"
# The documentation's example of a failure.
NETWORK_DETAIL = "Unable to communicate with network device"
IP_DETAIL = "No public IP addresses available in the dedicated allocation"
SETTLE_SECONDS = 30.0
NETWORK_CIDR = "192.168.100.0/24"
_POOLS = (("web-http", 80), ("web-https", 443))
# The networks and pools date from before any server.
_SETUP_AGE = 800 * 86400


@dataclass(frozen=True, slots=True)
class Network:
    """The RackConnect cloud network of an account's region."""

    id: str
    name: str
    cidr: str
    created: float
    updated: float


@dataclass(frozen=True, slots=True)
class Pool:
    """A load balancer pool (made by Rackspace, always ``ACTIVE``)."""

    id: str
    account: str
    region: str
    name: str
    port: int
    virtual_ip: str
    external: int
    created: float


@dataclass(eq=False, slots=True)
class Resource:
    """A public IP or a pool membership of one server; ``status`` is served as stored."""

    kind: str
    id: str
    account: str
    region: str
    server_id: str
    created: float
    updated: float | None
    status: str
    status_detail: str | None = None
    pool_id: str | None = None
    address: str | None = None
    settle_at: float | None = None
    outcome: str | None = None
    outcome_detail: str | None = None
    gone: bool = False

    def settle(self, now: float, address: str) -> None:
        """Reach the outcome if its time has come."""
        if self.updated is None and now > self.created:
            # Null only in the answer to the POST, as published; set a moment later.
            self.updated = min(now, self.created + 2.0)
        if self.settle_at is None or now < self.settle_at:
            return
        self.updated = self.settle_at
        if self.outcome == REMOVED:
            self.gone = True
        else:
            self.status = self.outcome or "ACTIVE"
            self.status_detail = self.outcome_detail
            if self.kind == PUBLIC_IP and self.status == "ACTIVE" and self.address is None:
                self.address = address
        self.settle_at = self.outcome = self.outcome_detail = None

    def summary(self) -> dict:
        """A plain copy for ``Simulator.rackconnect_v3()``."""
        out = {
            "kind": self.kind,
            "id": self.id,
            "account": self.account,
            "region": self.region,
            "server_id": self.server_id,
            "status": self.status,
            "status_detail": self.status_detail,
            "created": self.created,
            "updated": self.updated,
        }
        if self.kind == PUBLIC_IP:
            out["public_ip_v4"] = self.address
        else:
            out["pool_id"] = self.pool_id
        return out


class RackConnectV3:
    """The v3.0 resources of every account; guarded by the fleet's lock."""

    def __init__(self, fleet: Fleet, seed: int) -> None:
        self.fleet = fleet
        self.rng = random.Random(f"rackconnect-v3-{seed}")
        self.resources: dict[str, Resource] = {}
        self.pools: dict[tuple[str, str], list[Pool]] = {}
        self.networks: dict[tuple[str, str], Network] = {}
        self._seen: set[str] = set()
        now = fleet.clock()
        with fleet.lock:
            for account in fleet.accounts.values():
                for region in account.rackconnect_v3:
                    self._set_up(account.name, region, now)
            self._seed(now)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _set_up(self, account: str, region: str, now: float) -> None:
        key = (account, region)
        made = now - _SETUP_AGE
        self.networks[key] = Network(self._uuid(), "RC-CLOUD-NETWORK", NETWORK_CIDR, made, made)
        self.pools[key] = [
            Pool(
                self._uuid(),
                account,
                region,
                name,
                port,
                f"203.0.113.{self.rng.randrange(2, 250)}",
                self.rng.randrange(0, 5),
                made,
            )
            for name, port in _POOLS
        ]

    def _seed(self, now: float) -> None:
        """The starting servers: settled resources, plus one of each unfinished and failed."""
        for account, region in self.pools:
            servers = [s for s in self._live(account, region) if s.status == "ACTIVE"]
            for i, server in enumerate(servers):
                self._seen.add(server.id)
                # Wired a few minutes after the server was built.
                start = min(server.created + 60 + 240 * self.rng.random(), now - 60)
                ip_status, node_status = "ACTIVE", "ACTIVE"
                if i == 0:
                    ip_status = "ADD_FAILED"
                elif i == 1:
                    ip_status = "ADDING"
                elif i == 2:
                    node_status = "ADD_FAILED"
                elif i == 3:
                    node_status = "ADDING"
                self._add_seeded(server, PUBLIC_IP, None, ip_status, start=start, now=now)
                pool = self.pools[(account, region)][i % 2]
                self._add_seeded(server, POOL_NODE, pool.id, node_status, start=start, now=now)

    def _add_seeded(
        self,
        server: Server,
        kind: str,
        pool_id: str | None,
        status: str,
        *,
        start: float,
        now: float,
    ) -> None:
        if status == "ADDING":
            # Asked for 30 s ago; done in 20 to 80 s.
            self.add(server, kind, pool_id, after=50 + self.rng.random() * 60, created=now - 30)
            return
        res = self.add(server, kind, pool_id, after=0, created=start)
        res.updated = start + 5 + int(self.rng.random() * 50)
        res.settle_at, res.outcome = None, None
        res.status = status
        res.address = None
        if status == "ADD_FAILED":
            res.status_detail = NETWORK_DETAIL if kind == POOL_NODE else IP_DETAIL
        elif kind == PUBLIC_IP:
            res.address = self.address_for(server)

    def _live(self, account: str, region: str) -> list[Server]:
        return [s for s in self.fleet.lists.get((account, region), []) if s.deleted_at is None]

    def has_region(self, account: str, region: str) -> bool:
        """Whether RackConnect v3.0 serves this account's region."""
        return (account, region) in self.pools

    def address_for(self, server: Server) -> str:
        """The public IPv4 a server's public IP gets (from the dedicated allocation)."""
        raw = server.raw
        return (
            f"203.0.113.{2 + raw[62] % 250}" if raw[63] % 2 else f"198.51.100.{2 + raw[62] % 250}"
        )

    def private_ip(self, server: Server) -> str:
        """The server's address on the RackConnect cloud network."""
        return f"192.168.100.{2 + server.raw[59] % 250}"

    # --- changes ------------------------------------------------------------------------

    def add(
        self,
        server: Server,
        kind: str,
        pool_id: str | None = None,
        *,
        after: float = SETTLE_SECONDS,
        outcome: str = "ACTIVE",
        detail: str | None = None,
        created: float | None = None,
    ) -> Resource:
        """Add a public IP or pool membership: ``ADDING`` from ``created`` (default now),
        ``outcome`` ``after`` seconds later."""
        if kind not in (PUBLIC_IP, POOL_NODE):
            raise ValueError(f"kind must be {PUBLIC_IP!r} or {POOL_NODE!r}")
        if not isinstance(after, int | float) or isinstance(after, bool) or after < 0:
            raise ValueError("after must be a non-negative number of seconds")
        if outcome not in ("ACTIVE", "ADD_FAILED"):
            raise ValueError("outcome must be 'ACTIVE' or 'ADD_FAILED'")
        key = (server.account.name, server.region)
        if key not in self.pools:
            raise ValueError(f"{server.region} of {key[0]!r} has no RackConnect v3.0")
        if kind == POOL_NODE and pool_id not in {p.id for p in self.pools[key]}:
            raise KeyError(f"no load balancer pool {pool_id!r} in {server.region}")
        now = self.fleet.clock()
        if outcome == "ADD_FAILED" and detail is None:
            detail = NETWORK_DETAIL if kind == POOL_NODE else IP_DETAIL
        start = now if created is None else created
        res = Resource(
            kind=kind,
            id=self._uuid(),
            account=key[0],
            region=key[1],
            server_id=server.id,
            created=start,
            updated=None,
            status="ADDING",
            pool_id=pool_id if kind == POOL_NODE else None,
            settle_at=start + after,
            outcome=outcome,
            outcome_detail=detail,
        )
        self.resources[res.id] = res
        res.settle(now, self.address_for(server))
        return res

    def remove(
        self, resource_id: str, *, after: float = SETTLE_SECONDS, fail: bool = False
    ) -> None:
        """Start removing: ``REMOVING`` now, gone (or ``REMOVE_FAILED``) in ``after`` s."""
        if not isinstance(after, int | float) or isinstance(after, bool) or after < 0:
            raise ValueError("after must be a non-negative number of seconds")
        res = self.get(resource_id)
        now = self.fleet.clock()
        res.status, res.status_detail, res.updated = "REMOVING", None, now
        res.settle_at = now + after
        res.outcome = "REMOVE_FAILED" if fail else REMOVED
        res.outcome_detail = NETWORK_DETAIL if fail else None
        self.settle_all()

    def set_status(self, resource_id: str, status: str, detail: str | None = None) -> None:
        """Set the status now, stored as given (odd case and spaces included)."""
        if not isinstance(status, str) or (detail is not None and not isinstance(detail, str)):
            raise ValueError("status (and detail, if given) must be strings")
        res = self.get(resource_id)
        res.status, res.status_detail = status, detail
        res.updated = self.fleet.clock()
        res.settle_at = res.outcome = res.outcome_detail = None

    def get(self, resource_id: str) -> Resource:
        """A resource that is still there (KeyError otherwise)."""
        res = self.resources.get(resource_id)
        if res is None or res.gone:
            raise KeyError(f"no RackConnect v3.0 resource {resource_id!r}")
        return res

    # --- reading ------------------------------------------------------------------------

    def settle_all(self) -> None:
        """Bring everything up to the clock: settle due resources, follow the fleet."""
        now = self.fleet.clock()
        by_id = self.fleet.by_id
        for res in self.resources.values():
            if res.gone:
                continue
            server = by_id.get(res.server_id)
            if server is None or server.deleted_at is not None:
                res.gone = True  # a deleted server's resources go with it
                continue
            res.settle(now, self.address_for(server))
        for account, region in self.pools:
            for server in self._live(account, region):
                if server.id in self._seen or server.kept or server.status != "ACTIVE":
                    continue
                # A server the churn built: RackConnect starts wiring it when it turns
                # ACTIVE (its last change) and is done within a minute or so.
                self._seen.add(server.id)
                roll = self.rng.random()
                since = float(server.updated)
                self.add(server, PUBLIC_IP, after=15 + 45 * roll, created=since)
                pool = self.pools[(account, region)][self.rng.randrange(2)]
                self.add(
                    server,
                    POOL_NODE,
                    pool.id,
                    after=20 + 40 * roll,
                    outcome="ADD_FAILED" if roll > 0.9 else "ACTIVE",
                    created=since,
                )

    def listing(self, account: str, region: str, kind: str) -> list[Resource]:
        """The region's current resources of a kind, oldest first."""
        return [
            r
            for r in self.resources.values()
            if not r.gone and r.kind == kind and (r.account, r.region) == (account, region)
        ]

    def summaries(self, account: str | None = None, region: str | None = None) -> dict:
        """Copies of the pools and resources, filtered."""
        wanted = region.upper() if region else None
        keys = [
            k
            for k in self.pools
            if (account is None or k[0] == account) and (wanted is None or k[1] == wanted)
        ]
        return {
            "pools": [
                {
                    "id": p.id,
                    "account": p.account,
                    "region": p.region,
                    "name": p.name,
                    "port": p.port,
                    "virtual_ip": p.virtual_ip,
                }
                for k in keys
                for p in self.pools[k]
            ],
            "resources": [
                r.summary()
                for k in keys
                for kind in (PUBLIC_IP, POOL_NODE)
                for r in self.listing(k[0], k[1], kind)
            ],
        }
