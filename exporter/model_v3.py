"""RackConnect v3.0 records and the rule of a wired server (pure, no I/O).

v3.0 keeps no server metadata: its public IPs and load balancer pool memberships come from
the region's own API. ``exporter.model`` puts them on the server records and re-exports
these names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import msgspec

ACTIVE = "ACTIVE"
# The resource states (public IPs, pools, pool nodes); anything else is UNKNOWN.
V3_STATES = ("ADDING", ACTIVE, "REMOVING", "ADD_FAILED", "REMOVE_FAILED")
V3_FAILURES = frozenset({"ADD_FAILED", "REMOVE_FAILED"})  # terminal, with a status_detail
PUBLIC_IP = "public_ip"  # the ``resource`` of a public IP
POOL_NODE = "pool_node"  # the ``resource`` of a pool membership


class PublicIp(msgspec.Struct, frozen=True, gc=False):
    """A RackConnect v3.0 public IP of a cloud server; ``address`` is ``""`` until allocated."""

    id: str
    server_id: str
    address: str
    status: str
    status_detail: str | None
    created: float | None
    updated: float | None


class Pool(msgspec.Struct, frozen=True, gc=False):
    """A RackConnect v3.0 load balancer pool; ``port`` is None when the API gives none."""

    id: str
    name: str
    port: int | None
    virtual_ip: str
    status: str


class PoolNode(msgspec.Struct, frozen=True, gc=False):
    """A cloud server's membership of a RackConnect v3.0 load balancer pool."""

    id: str
    pool_id: str
    server_id: str
    status: str
    status_detail: str | None
    created: float | None
    updated: float | None


def rackconnect_v3_regions(
    setting: tuple[str, ...] | None, catalog: Iterable[str]
) -> tuple[str, ...]:
    """Where an account has RackConnect v3.0: the configured regions, or (``setting`` None,
    auto) the regions whose catalog has a ``rax:rackconnect`` endpoint."""
    return tuple(sorted(catalog)) if setting is None else setting


class _HasStatus(Protocol):
    @property
    def status(self) -> str: ...


def v3_wired(resources: Iterable[_HasStatus]) -> bool:
    """Every one of a server's public IPs (or pool memberships) ``ACTIVE``; true for none.

    The rule behind ``rackconnect_server_ready`` in a v3.0 region and behind ``wait``.
    """
    return all(r.status == ACTIVE for r in resources)
