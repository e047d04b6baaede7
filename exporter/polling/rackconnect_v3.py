"""RackConnect v3.0 in a region's poll: read its API, put each server's resources on its record.

The v3.0 API is read after the Cloud Servers listing, through the same client and tokens.
Its failure is its own: the listing is published all the same, with the last good v3.0
resources kept on the records, and the region's ``rackconnect_v3_up`` says 0.
"""

from __future__ import annotations

import dataclasses
import operator

from exporter.errors import BAD_RESPONSE, RATE_LIMITED, UpstreamError
from exporter.logs import format_exception, logger
from exporter.model import Pool, PoolNode, PublicIp, Server
from exporter.publishing import V3Poll
from exporter.rackspace.client import ApiClient
from exporter.rackspace.rackconnect_v3 import RegionState, Seen, Tokens, fetch_region

_NONE: tuple[tuple[PublicIp, ...], tuple[PoolNode, ...]] = ((), ())


def _same(old: list[PoolNode], new: list[PoolNode]) -> bool:
    """Whether two readings hold the very same nodes: the pools' lists are joined anew."""
    return len(old) == len(new) and all(map(operator.is_, old, new))


class RegionV3:
    """One region's RackConnect v3.0 state: its last good reading and the records it made.

    ``attach`` hands back the very records (and tuple) of last time where nothing changed,
    so that an unchanged region is still recognised by identity downstream.
    """

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        self.error: UpstreamError | None = None  # the last read's, None when it succeeded
        self.retry_after: float | None = None  # what a rate-limited read was told to wait
        self._seen: Seen = {}
        self._state: RegionState | None = None  # the last good reading
        self._pools: tuple[Pool, ...] = ()
        self._by_server: dict[str, tuple[tuple[PublicIp, ...], tuple[PoolNode, ...]]] = {}
        self._listed: tuple[Server, ...] = ()  # what ``attach`` was last given
        self._attached: tuple[Server, ...] = ()  # and what it gave, row by row
        self._regrouped = False  # the resources changed since

    def read(self, client: ApiClient, base: str | None, tokens: Tokens) -> bool:
        """Read the region's v3.0 API; False (logged once per failing spell) when it failed."""
        self.retry_after = None
        try:
            if base is None:
                raise UpstreamError(
                    BAD_RESPONSE,
                    f"no RackConnect v3.0 (rax:rackconnect) endpoint for {self.region} "
                    "in the service catalog",
                )
            state = fetch_region(client, base, tokens, self.region, self._seen)
        except UpstreamError as exc:
            self._failed(exc)
            self.retry_after = exc.retry_after if exc.reason == RATE_LIMITED else None
            return False
        except Exception as exc:  # a bug must not cost the Cloud Servers poll
            logger.error(
                "unexpected error while polling RackConnect v3.0",
                exc_info=exc,
                extra={"account": self.account, "region": self.region},
            )
            self._failed(UpstreamError(BAD_RESPONSE, f"unexpected error: {exc!r}"), log=False)
            return False
        if self.error is not None:
            logger.info(
                "RackConnect v3.0 poll succeeded again",
                extra={"account": self.account, "region": self.region},
            )
        self.error = None
        self._take(state)
        return True

    def poll(self) -> V3Poll:
        """The region's v3.0 part of the poll, for the writer."""
        if self.error is None:
            return V3Poll(True, self._pools)
        return V3Poll(False, self._pools, self.error.reason)

    def _failed(self, exc: UpstreamError, log: bool = True) -> None:
        if self.error is None and log:
            logger.warning(
                "RackConnect v3.0 poll failed; its last good data is kept",
                extra={
                    "account": self.account,
                    "region": self.region,
                    "reason": exc.reason,
                    "err": format_exception(exc),
                },
            )
        self.error = exc

    def _take(self, state: RegionState) -> None:
        old = self._state
        if (
            old is not None
            and old.public_ips is state.public_ips
            and _same(old.nodes, state.nodes)
            and old.pools is state.pools
        ):
            return  # every answer was the very body of last time
        self._state = state
        self._group(state)

    def _group(self, state: RegionState) -> None:
        """Each server's public IPs and pool memberships, held once while they are equal."""
        self._pools = tuple(sorted(state.pools, key=lambda p: p.id))
        ips: dict[str, list[PublicIp]] = {}
        nodes: dict[str, list[PoolNode]] = {}
        for ip in state.public_ips:
            ips.setdefault(ip.server_id, []).append(ip)
        for node in state.nodes:
            nodes.setdefault(node.server_id, []).append(node)
        by_server = {}
        for server_id in ips.keys() | nodes.keys():
            fresh = (
                tuple(sorted(ips.get(server_id, ()), key=lambda i: i.id)),
                tuple(sorted(nodes.get(server_id, ()), key=lambda n: (n.pool_id, n.id))),
            )
            held = self._by_server.get(server_id)
            by_server[server_id] = held if held == fresh else fresh
        self._by_server = by_server
        self._regrouped = True  # attach again, even to the same listing

    def attach(self, servers: tuple[Server, ...]) -> tuple[Server, ...]:
        """The listed records with their v3.0 public IPs and pool memberships."""
        if servers is self._listed and not self._regrouped:
            return self._attached
        listed_before, attached_before = self._listed, self._attached
        row_before = {s.id: row for row, s in enumerate(listed_before)}
        out: list[Server] = []
        changed = len(servers) != len(attached_before)
        for listed in servers:
            ips, nodes = self._by_server.get(listed.id, _NONE)
            row = row_before.get(listed.id)
            server = None
            if row is not None and listed_before[row] is listed:
                server = attached_before[row]  # this very record, attached last time
            if server is None or server.public_ips is not ips or server.pool_nodes is not nodes:
                server = (
                    dataclasses.replace(listed, public_ips=ips, pool_nodes=nodes)
                    if ips or nodes
                    else listed
                )
            changed = changed or server is not attached_before[len(out)]
            out.append(server)
        self._listed, self._regrouped = servers, False
        if changed:
            self._attached = tuple(out)
        return self._attached
