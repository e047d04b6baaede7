"""The ``status`` command: one poll of every configured account, printed as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from exporter.app import Exporter
from exporter.commands import flags
from exporter.config import REGIONS, Config
from exporter.errors import AUTH, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from exporter.model import RegionView
from exporter.polling.supervisor import PollSettings
from exporter.rackconnect_v3_state import V3State
from exporter.rackspace.cloudservers import GLOBAL
from exporter.store import Snapshot

FEATURE_SHORT = {
    "configure_network_stack": "network",
    "manage_software_firewall": "firewall",
    "provision_public_ip": "public_ip",
}
COLUMNS = (
    "ACCOUNT",
    "REGION",
    "SERVER_ID",
    "NAME",
    "STATUS",
    "RACKCONNECT",
    "FEATURES",
    "MANAGED",
    "READY",
)
V3_COLUMN = "RACKCONNECT_V3"  # shown only when some server is in a RackConnect v3.0 region
REASON_COLUMN = "REASON"  # shown last, only when some server has a reason to show


@dataclass(frozen=True)
class Row:
    """One server as ``status`` shows it."""

    account: str
    region: str
    server_id: str
    name: str
    generation: str
    rackconnect: str | None
    features: dict[str, bool]
    managed: str | None
    ready: bool
    unprocessable_reason: str | None
    status: str | None = None  # the Nova status
    v3: V3State | None = None  # None outside a RackConnect v3.0 region

    @property
    def reason(self) -> str | None:
        """The UNPROCESSABLE reason, else what keeps RackConnect v3.0 from being wired."""
        if self.unprocessable_reason or self.v3 is None:
            return self.unprocessable_reason
        return self.v3.reason()

    def cells(self) -> tuple[str, ...]:
        """The table cells, in COLUMNS order."""
        if not self.features:
            features = "-"
        else:
            features = ",".join(FEATURE_SHORT[f] for f, on in self.features.items() if on) or "none"
        return (
            self.account,
            self.region,
            self.server_id,
            self.name,
            self.status or "-",
            self.rackconnect or "-",
            features,
            self.managed or "-",
            "yes" if self.ready else "no",
        )

    def as_json(self) -> dict[str, Any]:
        """The JSON object of one server (``public_ips`` and ``pool_nodes`` in v3.0 regions)."""
        doc = {
            "account": self.account,
            "region": self.region,
            "server_id": self.server_id,
            "name": self.name,
            "generation": self.generation,
            "status": self.status,
            "rackconnect_status": self.rackconnect,
            "features": self.features,
            "managed_status": self.managed,
            "unprocessable_reason": self.unprocessable_reason,
            "ready": self.ready,
        }
        return doc | self.v3.fields() if self.v3 is not None else doc


def poll_once(config: Config, timeout: float) -> Snapshot:
    """Poll every account once, in parallel; the resulting snapshot."""
    exporter = Exporter(config.accounts, PollSettings(interval=0.0, timeout=timeout))
    try:
        return exporter.poll_once()
    finally:
        exporter.stop()


def rows(
    snapshot: Snapshot,
    regions: Iterable[str] = (),
    server: str | None = None,
    not_ready: bool = False,
) -> list[Row]:
    """Every server of the snapshot that passes the filters, sorted."""
    wanted_regions = {r.upper() for r in regions}
    out: list[Row] = []
    for account in snapshot.accounts:
        for region in account.regions:
            if not region.region or (wanted_regions and region.region not in wanted_regions):
                continue
            for s in region.servers:
                if server is not None and server not in (s.id, s.name):
                    continue
                v3 = account.has_rackconnect_v3(region.region)
                ready = s.ready(account.expects_rackconnect(region.region), account.managed, v3)
                if not_ready and ready:
                    continue
                out.append(
                    Row(
                        account=account.name,
                        region=region.region,
                        server_id=s.id,
                        name=s.name,
                        generation=s.generation,
                        rackconnect=s.automation_status,
                        features=dict(s.features),
                        managed=s.managed_status,
                        ready=ready,
                        unprocessable_reason=s.unprocessable_reason,
                        status=s.status,
                        v3=V3State.of_server(s) if v3 else None,
                    )
                )
    out.sort(key=lambda r: (r.account, r.region, r.name, r.server_id))
    return out


def problems(snapshot: Snapshot) -> list[tuple[str, str, str]]:
    """(account, region, reason) of every region whose poll failed."""
    return [
        (a.name, r.region, r.last_error or "unknown")
        for a in snapshot.accounts
        for r in a.regions
        if not r.up
    ]


def v3_problems(snapshot: Snapshot) -> list[tuple[str, str]]:
    """(account, region) of every region polled but whose RackConnect v3.0 poll failed."""
    return [
        (a.name, r.region)
        for a in snapshot.accounts
        for r in a.regions
        if r.up and r.v3_up is False
    ]


def render_table(found: list[Row]) -> str:
    """An aligned text table with a one-line summary."""
    table = [COLUMNS, *(r.cells() for r in found)]
    if any(r.v3 is not None for r in found):
        table[0] = (*table[0], V3_COLUMN)
        for i, r in enumerate(found, 1):
            table[i] = (*table[i], r.v3.describe() if r.v3 is not None else "-")
    if any(r.reason for r in found):
        table[0] = (*table[0], REASON_COLUMN)
        for i, r in enumerate(found, 1):
            table[i] = (*table[i], r.reason or "-")
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    ready = sum(r.ready for r in found)
    lines.append(f"{len(found)} server(s), {ready} ready, {len(found) - ready} not ready")
    return "\n".join(lines) + "\n"


def render_json(found: list[Row], snapshot: Snapshot) -> str:
    """``{"servers": [...], "regions": [...]}``."""
    doc = {
        "servers": [r.as_json() for r in found],
        "regions": [_region_json(a.name, r) for a in snapshot.accounts for r in a.regions],
    }
    return json.dumps(doc, indent=2) + "\n"


def _region_json(account: str, region: RegionView) -> dict[str, Any]:
    doc = {
        "account": account,
        "region": region.region,
        "up": region.up,
        "error": region.last_error,
        "servers": len(region.servers),
    }
    if region.v3_up is not None:  # a RackConnect v3.0 region
        doc["rackconnect_v3_up"] = region.v3_up
    return doc


def poll_and_print(
    config: Config,
    *,
    timeout: float,
    output: str = "table",
    regions: Iterable[str] = (),
    server: str | None = None,
    not_ready: bool = False,
    out: TextIO,
    err: TextIO,
) -> int:
    """Poll, print, and return the exit code."""
    wanted = {r.strip().upper() for r in regions}
    unknown = sorted(wanted - {*REGIONS, GLOBAL})
    if unknown:
        known = ", ".join((*REGIONS, GLOBAL))
        print(f"status: unknown region {', '.join(unknown)} (one of {known})", file=err)
        return EXIT_USAGE
    snapshot = poll_once(config, timeout)
    failed = problems(snapshot)
    for account, region, reason in failed:
        where = f"{account}/{region}" if region else account
        print(f"status: {where}: poll failed ({reason})", file=err)
    v3_failed = v3_problems(snapshot)
    for account, region in v3_failed:
        print(
            f"status: {account}/{region}: RackConnect v3.0 poll failed "
            "(public IPs and pool memberships shown as of its last good poll)",
            file=err,
        )
    if not any(a.known for a in snapshot.accounts):
        reasons = {reason for _, region, reason in failed if not region}
        if reasons <= {AUTH}:
            print("status: every account failed to authenticate; check the credentials", file=err)
            return EXIT_USAGE
        print("status: no account could be reached", file=err)
        return EXIT_FAILURE
    polled = {r.region for a in snapshot.accounts for r in a.regions if r.region}
    missing = sorted(wanted - polled)
    if missing and all(a.known for a in snapshot.accounts):
        print(
            f"status: no account polls region {', '.join(missing)} "
            f"(polled: {', '.join(sorted(polled)) or 'none'})",
            file=err,
        )
        return EXIT_USAGE
    found = rows(snapshot, wanted, server, not_ready)
    out.write(render_json(found, snapshot) if output == "json" else render_table(found))
    out.flush()
    # A failed region leaves servers out: a script must not read that as "all is well".
    if any(not wanted or region in wanted or not region for _, region, _ in failed):
        return EXIT_FAILURE
    if any(not wanted or region in wanted for _, region in v3_failed):
        return EXIT_FAILURE
    return EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``status`` flags to a parser."""
    parser.description = (
        "Poll every configured account once and print a table (or JSON) of servers. Exit 0; "
        "1 when a region it polled failed, Cloud Servers or RackConnect v3.0 (the others are "
        "still printed), or no account could be reached; 3 on a configuration error, an "
        "unknown --region, or when every account failed to authenticate."
    )
    parser.add_argument(
        "--output",
        choices=("table", "json"),
        default="table",
        help="table or json (default: table)",
    )
    parser.add_argument(
        "--region",
        dest="regions",
        action="append",
        default=[],
        metavar="REGION",
        help="only servers in this region (GLOBAL for first generation); repeatable",
    )
    parser.add_argument(
        "--server", metavar="ID_OR_NAME", help="only the server with this id or name"
    )
    parser.add_argument(
        "--not-ready", dest="not_ready", action="store_true", help="only servers that are not ready"
    )
    flags.add_config_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Poll every account once and print its servers."""
    config = flags.configure(args)
    if config is None:
        return EXIT_USAGE
    return poll_and_print(
        config,
        timeout=args.poll_timeout,
        output=args.output,
        regions=[r for value in args.regions for r in value.split(",") if r.strip()],
        server=args.server,
        not_ready=args.not_ready,
        out=sys.stdout,
        err=sys.stderr,
    )
