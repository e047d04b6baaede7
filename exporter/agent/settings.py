"""The on-server flags shared by ``agent`` and ``wait --local``, and what they resolve to.

What the flags leave open comes from XenStore: the region, and the roles that say whether
RackConnect and Managed Operations are expected here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from exporter.agent.inserver import default_url, region_from_url
from exporter.agent.managedops import ManagedOps, default_completion_file, default_state_file
from exporter.agent.xenstore import XENSTORE_COMMAND, xenstore_read
from exporter.errors import UsageError


@dataclass(frozen=True)
class Local:
    """Where the on-server API is and what this server has, from the flags and XenStore."""

    region: str
    url: str
    managed: bool
    rackconnect: bool
    managed_ops: ManagedOps


def add_local_flags(parser: argparse.ArgumentParser) -> None:
    """The on-server flags shared by ``agent`` and ``wait --local``."""
    parser.add_argument(
        "--rackconnect.region",
        dest="rackconnect_region",
        metavar="REGION",
        help="the server's region (ORD, DFW, IAD, LON, SYD, HKG); default: from XenStore",
    )
    parser.add_argument(
        "--rackconnect.url",
        dest="rackconnect_url",
        metavar="URL",
        help="base URL of the in-server API (default: "
        "https://{region}.api.rackconnect.rackspace.com)",
    )
    parser.add_argument(
        "--rackconnect",
        dest="rackconnect",
        choices=("auto", "true", "false"),
        default="auto",
        help="whether RackConnect automation is expected on this server; auto: true unless "
        "the XenStore roles say otherwise (default: auto)",
    )
    parser.add_argument(
        "--managed",
        choices=("auto", "true", "false"),
        default="auto",
        help="whether this server has Managed Operations, so ready waits for its completion; "
        "auto: from the XenStore roles, else false (default: auto)",
    )
    parser.add_argument(
        "--managed.completion-file",
        dest="completion_file",
        default=default_completion_file(),
        metavar="PATH",
        help="the file Managed Operations creates when done (default: %(default)s)",
    )
    parser.add_argument(
        "--managed.state-file",
        dest="state_file",
        default=default_state_file(),
        metavar="PATH",
        help="where completion is remembered, so a cleared /tmp does not undo it; empty: "
        "remember nothing (default: %(default)s)",
    )
    parser.add_argument(
        "--xenstore.command",
        dest="xenstore_command",
        default=XENSTORE_COMMAND,
        metavar="PATH",
        help="the xenstore-read program (none on Windows: XenStore is then not read) "
        "(default: %(default)s)",
    )


def local_settings(args: argparse.Namespace) -> Local:
    """The on-server settings; raises UsageError when the region cannot be found."""

    def xenstore(key: str) -> str | None:
        return xenstore_read(key, args.xenstore_command)

    region = args.rackconnect_region
    if region is None and args.rackconnect_url:
        region = region_from_url(args.rackconnect_url)
    if region is None:
        region = xenstore("vm-data/provider_data/region")
    if region is None and not args.rackconnect_url:
        raise UsageError("give --rackconnect.region (or --rackconnect.url)")
    region = (region or "").upper()
    roles = None
    if "auto" in (args.managed, args.rackconnect):
        roles = xenstore("vm-data/provider_data/roles")
    managed = args.managed == "true" or (args.managed == "auto" and "rax_managed" in (roles or ""))
    rackconnect = args.rackconnect == "true" or (
        args.rackconnect == "auto" and (roles is None or "rack_connect" in roles)
    )
    return Local(
        region=region,
        url=args.rackconnect_url or default_url(region),
        managed=managed,
        rackconnect=rackconnect,
        managed_ops=ManagedOps(args.completion_file, args.state_file or None, xenstore),
    )
