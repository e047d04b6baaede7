"""The ``agent`` command, run on a cloud server: its flags, and the agent of ``exporter.agent``
(the RackConnect in-server API and Managed Operations, exposed with the exporter's metric names).
"""

from __future__ import annotations

import argparse
import socket

from exporter.agent.runtime import ACCOUNT, Agent
from exporter.agent.settings import add_local_flags, local_settings
from exporter.commands import flags
from exporter.commands.lifecycle import run_server
from exporter.errors import EXIT_USAGE
from exporter.exposition.families import AGENT_FAMILIES
from exporter.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``agent`` flags to a parser."""
    parser.description = (
        "Run on a cloud server: poll the RackConnect in-server API (at most 30 requests a "
        "minute) and Managed Operations (XenStore, the completion file), and serve the "
        "exporter's metrics for this server."
    )
    flags.add_web_flags(parser)
    flags.add_poll_interval_flag(
        parser,
        "60s",
        "how often to read the in-server API; never more than 30 requests a minute whatever "
        "this says",
    )
    flags.add_poll_timeout_flag(parser)
    add_local_flags(parser)
    parser.add_argument(
        "--server.id",
        dest="server_id",
        metavar="ID",
        help="the server_id label (default: from the API, else XenStore, else the host name)",
    )
    parser.add_argument(
        "--server.name",
        dest="server_name",
        metavar="NAME",
        help="the name label (default: the host name)",
    )
    parser.add_argument(
        "--server.generation",
        dest="generation",
        choices=("next", "first"),
        default="next",
        help="the generation label (default: next)",
    )
    parser.add_argument(
        "--account.name",
        dest="account_name",
        default=ACCOUNT,
        metavar="NAME",
        help=f"the account label (default: {ACCOUNT})",
    )
    flags.add_log_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Serve the local server's RackConnect and Managed Operations state."""
    flags.setup_logging(args)
    local = local_settings(args)
    web = flags.web(args)
    if web is None:
        return EXIT_USAGE
    store = Store(args.poll_interval, server_families=AGENT_FAMILIES)
    agent = Agent(
        store,
        base_url=local.url,
        region=local.region,
        server_id=args.server_id,
        server_name=args.server_name or socket.gethostname(),
        generation=args.generation,
        managed=local.managed,
        rackconnect=local.rackconnect,
        completion_file=args.completion_file,
        state_file=args.state_file or None,
        xenstore=local.managed_ops.xenstore,
        account=args.account_name,
        timeout=args.poll_timeout,
    )
    return run_server(web, store, agent.starter(args.poll_interval))
