"""The usual Python exporter: a prometheus_client custom collector rendering every scrape.

Usage: ``python -m bench.naive IDENTITY_URL USERNAME API_KEY``; prints the port. It lists
the account once with the exporter's own client (so it holds exactly the same records),
then serves them with ``prometheus_client.start_http_server``, building every metric
family from the records on each scrape.
"""

from __future__ import annotations

import sys
import threading

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from exporter.model import AUTOMATION_STATUSES, MANAGED_STATUSES, Server
from exporter.rackspace.client import ApiClient
from exporter.rackspace.cloudservers import CloudServers
from exporter.rackspace.identity import (
    MANAGED_ROLE,
    NEXT_GEN_SERVICE,
    RACKCONNECT_ROLE,
    Identity,
    TokenCache,
)


class FleetCollector(Collector):
    """Renders the per-server families from server records on every collect()."""

    def __init__(self, account: str, fleet: dict[str, list[Server]], rc: bool, mo: bool):
        self.account, self.fleet, self.rc, self.mo = account, fleet, rc, mo

    def collect(self):
        base = ["account", "region", "server_id"]

        def family(name: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, f"{name}.", labels=[*base, *extra])

        info = family("rackconnect_server_info", "name", "generation")
        created = family("rackconnect_server_created_timestamp_seconds")
        status = family("rackconnect_automation_status", "status")
        feature = family("rackconnect_automation_feature_enabled", "feature")
        managed = family("rackconnect_managed_operations_status", "status")
        reason = family("rackconnect_automation_unprocessable_info", "reason")
        ready = family("rackconnect_server_ready")
        for region, servers in self.fleet.items():
            for s in servers:
                ids = [self.account, region, s.id]
                info.add_metric([*ids, s.name, s.generation], 1)
                if s.created is not None:
                    created.add_metric(ids, s.created)
                if s.automation_status is not None:
                    for st in AUTOMATION_STATUSES:
                        status.add_metric([*ids, st], float(st == s.automation_status))
                for f, on in s.features:
                    feature.add_metric([*ids, f], float(on))
                if s.managed_status is not None:
                    for st in MANAGED_STATUSES:
                        managed.add_metric([*ids, st], float(st == s.managed_status))
                if s.unprocessable_reason is not None:
                    reason.add_metric([*ids, s.unprocessable_reason], 1)
                ready.add_metric(ids, float(s.ready(self.rc, self.mo)))
        yield from (info, created, status, feature, managed, reason, ready)


def main() -> None:
    url, username, api_key = sys.argv[1:4]
    client = ApiClient(60)
    tokens = TokenCache(Identity(client, url, username, api_key=api_key))
    access = tokens.access()
    servers = CloudServers(client, tokens)
    fleet = {
        r: servers.list_region(r).servers for r in sorted(access.region_urls(NEXT_GEN_SERVICE))
    }
    REGISTRY.register(
        FleetCollector(
            username, fleet, RACKCONNECT_ROLE in access.roles, MANAGED_ROLE in access.roles
        )
    )
    httpd, _thread = start_http_server(0, addr="127.0.0.1")
    print(httpd.server_address[1], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
