"""The RackConnect v3.0 families: per server (public IPs, pool memberships, failure details)
and per region (pools, the v3.0 API's health).

The per-server families are written only in regions where a server has v3.0 resources: a
fleet without v3.0 pays nothing for them and gets neither lines nor headers.
"""

from __future__ import annotations

from exporter.exposition.text import Family, ServerFamily, escape_label
from exporter.model import MAX_REASON_LENGTH, UNKNOWN, Server
from exporter.model_v3 import POOL_NODE, PUBLIC_IP, V3_STATES

SERVER = ("account", "region", "server_id")
REGION = ("account", "region")
STATES = (*V3_STATES, UNKNOWN)

# current state -> the tail of every line of the state set, after the other labels
_TAILS = {
    current: tuple(f',status="{s}"}} {int(s == current)}\n' for s in sorted(STATES))
    for current in STATES
}


def has_v3(server: Server) -> bool:
    """Whether the server has a RackConnect v3.0 public IP or pool membership."""
    return bool(server.public_ips or server.pool_nodes)


def _state_set(prefix: str, status: str) -> str:
    return prefix + prefix.join(_TAILS.get(status) or _TAILS[UNKNOWN])


def _ip_status(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    return "".join(
        _state_set(f'{name}{labels},public_ip_id="{escape_label(ip.id)}"', ip.status)
        for ip in server.public_ips
    )


def _ip_info(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    return "".join(
        f'{name}{labels},public_ip_id="{escape_label(ip.id)}",'
        f'address="{escape_label(ip.address)}"}} 1\n'
        for ip in server.public_ips
    )


def _node_status(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    return "".join(
        _state_set(f'{name}{labels},pool_id="{escape_label(node.pool_id)}"', node.status)
        for node in server.pool_nodes
    )


def _detail(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    found = [(PUBLIC_IP, ip.id, ip.status_detail) for ip in server.public_ips]
    # A server is in a pool at most once: the pool's id names the membership and joins
    # with rackconnect_v3_pool_node_status.
    found += [(POOL_NODE, node.pool_id, node.status_detail) for node in server.pool_nodes]
    return "".join(
        f'{name}{labels},resource="{kind}",resource_id="{escape_label(resource_id)}",'
        f'detail="{escape_label(detail[:MAX_REASON_LENGTH])}"}} 1\n'
        for kind, resource_id, detail in found
        if detail
    )


V3_SERVER_FAMILIES = (
    PUBLIC_IP_STATUS := ServerFamily(
        "rackconnect_v3_public_ip_status",
        "gauge",
        "RackConnect v3.0 public IP of the server by status (ADDING, ACTIVE, REMOVING, "
        "ADD_FAILED, REMOVE_FAILED, UNKNOWN): 1 for the current one, 0 for the others.",
        (*SERVER, "public_ip_id", "status"),
        lines=_ip_status,
        only_if=has_v3,
    ),
    PUBLIC_IP_INFO := ServerFamily(
        "rackconnect_v3_public_ip_info",
        "info",
        'RackConnect v3.0 public IP of the server and its IPv4 address ("" until allocated; '
        "always 1).",
        (*SERVER, "public_ip_id", "address"),
        lines=_ip_info,
        only_if=has_v3,
    ),
    POOL_NODE_STATUS := ServerFamily(
        "rackconnect_v3_pool_node_status",
        "gauge",
        "RackConnect v3.0 load balancer pool membership of the server by status: 1 for the "
        "current one, 0 for the others.",
        (*SERVER, "pool_id", "status"),
        lines=_node_status,
        only_if=has_v3,
    ),
    STATUS_DETAIL_INFO := ServerFamily(
        "rackconnect_v3_status_detail_info",
        "info",
        "Why a RackConnect v3.0 public IP or pool membership is in its state, from its "
        "status_detail (always 1).",
        (*SERVER, "resource", "resource_id", "detail"),
        lines=_detail,
        only_if=has_v3,
    ),
)
"""The v3.0 per-server families, after the exporter's others."""

V3_POOL_INFO = Family(
    "rackconnect_v3_pool_info",
    "info",
    "RackConnect v3.0 load balancer pool of the account and region (always 1).",
    (*REGION, "pool_id", "name", "port", "virtual_ip"),
)
V3_POLL_ERRORS = Family(
    "rackconnect_v3_poll_errors_total",
    "counter",
    "Failed polls of the region's RackConnect v3.0 API, by reason (v3.0 regions only).",
    (*REGION, "reason"),
)
V3_UP = Family(
    "rackconnect_v3_up",
    "gauge",
    "1 if the last poll of the region's RackConnect v3.0 API succeeded, else 0 (v3.0 "
    "regions only).",
    REGION,
)
