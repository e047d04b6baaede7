"""RackConnect v3.0 state of one server: its public IPs and pool memberships (pure, no I/O).

A v3.0 server is wired when every public IP and pool membership it has is ``ACTIVE``;
``ADD_FAILED`` and ``REMOVE_FAILED`` are terminal; ``ADDING``, ``REMOVING`` and anything
unreadable (``UNKNOWN``) are waited through. A server with neither has nothing pending;
``--require-public-ip`` also needs at least one ``ACTIVE`` public IP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exporter.model import Server
from exporter.model_v3 import ACTIVE, POOL_NODE, PUBLIC_IP, v3_wired
from exporter.model_v3 import V3_FAILURES as FAILURES
from exporter.rackspace.rackconnect_v3 import ServerState

NAMES = {PUBLIC_IP: "public IP", POOL_NODE: "pool node"}


@dataclass(frozen=True)
class Resource:
    """A public IP or a pool membership, as much of it as a state line shows."""

    kind: str
    id: str
    status: str
    detail: str | None = None
    address: str = ""  # a public IP's address, "" until allocated
    pool_id: str = ""  # a pool node's load balancer pool

    def fields(self) -> dict[str, Any]:
        """The resource as JSON fields."""
        doc: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.kind == PUBLIC_IP:
            doc["address"] = self.address or None
        else:
            doc["pool_id"] = self.pool_id
        doc["status_detail"] = self.detail
        return doc

    def failure(self) -> str:
        """``RackConnect v3.0 pool node N of pool P is ADD_FAILED: <status_detail>``."""
        what = f"RackConnect v3.0 {NAMES[self.kind]} {self.id}"
        if self.kind == POOL_NODE:
            what += f" of pool {self.pool_id}"
        elif self.address:
            what += f" ({self.address})"
        return f"{what} is {self.status}: {self.detail or 'no status_detail given'}"


@dataclass(frozen=True)
class V3State:
    """What one read of the server's RackConnect v3.0 resources said."""

    public_ips: tuple[Resource, ...] = ()
    pool_nodes: tuple[Resource, ...] = ()
    # When the last of them changed (epoch), for the duration summary; not part of the state.
    updated: float | None = field(default=None, compare=False)

    @classmethod
    def of(cls, server: ServerState) -> V3State:
        """From a read of the v3.0 API, in a stable order."""
        ips = tuple(
            sorted(
                (
                    Resource(PUBLIC_IP, i.id, i.status, i.status_detail, i.address)
                    for i in server.public_ips
                ),
                key=lambda r: r.id,
            )
        )
        nodes = tuple(
            sorted(
                (
                    Resource(POOL_NODE, n.id, n.status, n.status_detail, pool_id=n.pool_id)
                    for n in server.nodes
                ),
                key=lambda r: (r.pool_id, r.id),
            )
        )
        stamps = [(i.updated, i.created) for i in server.public_ips]
        stamps += [(n.updated, n.created) for n in server.nodes]
        times = [t for pair in stamps for t in pair if t is not None]
        return cls(ips, nodes, max(times) if times else None)

    @classmethod
    def of_server(cls, server: Server) -> V3State:
        """From a polled record's public IPs and pool memberships."""
        return cls.of(ServerState(list(server.public_ips), list(server.pool_nodes)))

    @property
    def resources(self) -> tuple[Resource, ...]:
        """Public IPs, then pool memberships."""
        return self.public_ips + self.pool_nodes

    def failure(self) -> Resource | None:
        """The first resource in a terminal failure state, if any."""
        return next((r for r in self.resources if r.status in FAILURES), None)

    def pending(self) -> tuple[Resource, ...]:
        """What is still on its way: neither ``ACTIVE`` nor failed."""
        return tuple(r for r in self.resources if r.status != ACTIVE and r.status not in FAILURES)

    def has_active_ip(self) -> bool:
        """Whether at least one public IP is ``ACTIVE``."""
        return any(r.status == ACTIVE for r in self.public_ips)

    def settled(self) -> bool:
        """Every public IP and pool membership ``ACTIVE`` (also when there is none)."""
        return v3_wired(self.resources)

    def done(self, require_public_ip: bool) -> bool:
        """Settled, and with ``require_public_ip`` at least one ``ACTIVE`` public IP."""
        return self.settled() and (self.has_active_ip() or not require_public_ip)

    def waiting_for(self, require_public_ip: bool) -> str:
        """What a progress line says it still waits for ("" when nothing of v3.0)."""
        pending = [f"{NAMES[r.kind]} {r.id} {r.status}" for r in self.pending()]
        if not pending and require_public_ip and not self.has_active_ip():
            return "an ACTIVE public IP"
        return ", ".join(pending)

    def reason(self) -> str | None:
        """Why the server is not wired: the failed resource with its detail, or what is
        pending (None when settled), for tables and pages."""
        failed = self.failure()
        if failed is not None:
            return failed.failure()
        pending = self.waiting_for(require_public_ip=False)
        return f"RackConnect v3.0 waiting for {pending}" if pending else None

    def describe(self) -> str:
        """``public_ips=ACTIVE(203.0.113.5),ADDING pool_nodes=-``."""

        def states(items: tuple[Resource, ...]) -> str:
            words = [f"{r.status}({r.address})" if r.address else r.status for r in items]
            return ",".join(words) or "-"

        return f"public_ips={states(self.public_ips)} pool_nodes={states(self.pool_nodes)}"

    def fields(self) -> dict[str, Any]:
        """The state as JSON fields."""
        return {
            "public_ips": [r.fields() for r in self.public_ips],
            "pool_nodes": [r.fields() for r in self.pool_nodes],
        }
