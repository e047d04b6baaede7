"""The ``wait`` command: block until a server is ready, has failed, or time is up.

``wait SERVER_ID`` reads the server through the Cloud Servers API, and on a RackConnect
v3.0 region its public IPs and pool memberships through the v3.0 API (``remote``);
``wait --local`` runs on the server itself and reads the in-server API and Managed
Operations (``local``). Both run the one watch loop of ``loop`` (read, judge with
``verdict``, report with ``report``, back off) and exit alike.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from exporter.agent.settings import add_local_flags, local_settings
from exporter.commands import flags
from exporter.commands.wait.local import LocalWaiter
from exporter.commands.wait.remote import MAX_INTERVAL, NOT_FOUND_GRACE, Waiter
from exporter.commands.wait.report import OUTPUTS
from exporter.commands.wait.verdict import TARGETS
from exporter.durations import format_duration
from exporter.errors import EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["LocalWaiter", "Waiter", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``wait`` flags to a parser."""
    parser.description = (
        "Poll one server until it is ready (or, with --local, this server). Exit codes: "
        "0 ready, 1 a terminal failure (FAILED, UNPROCESSABLE, Build Error, Authentication "
        "Error, Nova status ERROR, deleted, a RackConnect v3.0 public IP or pool node "
        "ADD_FAILED or REMOVE_FAILED), 2 timeout, 3 usage, configuration or "
        "authentication error, or server not found after --not-found-grace."
    )
    parser.add_argument("server_id", metavar="SERVER_ID", nargs="?", help="the server's id")
    parser.add_argument(
        "--local",
        action="store_true",
        help="run on the cloud server itself: wait for the in-server RackConnect API to say "
        "DEPLOYED and Managed Operations to be Complete (takes the agent's flags)",
    )
    parser.add_argument(
        "--for",
        dest="wait_for",
        choices=TARGETS,
        default="ready",
        help="what to wait for: RackConnect automation (v3.0 on a RackConnect v3.0 region), "
        "Managed Operations, or both (the rackconnect_server_ready rule) (default: ready)",
    )
    parser.add_argument(
        "--require-public-ip",
        dest="require_public_ip",
        action="store_true",
        help="on a RackConnect v3.0 region, also wait until the server has at least one "
        "ACTIVE public IP (exit 2 at --timeout if none comes)",
    )
    parser.add_argument(
        "--region",
        metavar="REGION",
        help="the server's region (GLOBAL for first generation); default: search every "
        "region of the account",
    )
    parser.add_argument(
        "--account", metavar="NAME", help="only this configured account (default: every one)"
    )
    parser.add_argument(
        "--interval",
        type=flags.duration,
        default=flags.duration("5s"),
        metavar="DURATION",
        help="first pause between polls; it grows x1.5 up to --max-interval and starts "
        "again at each change (default: 5s)",
    )
    parser.add_argument(
        "--max-interval",
        dest="max_interval",
        type=flags.duration,
        default=MAX_INTERVAL,
        metavar="DURATION",
        help=f"cap on the pause between polls (default: {format_duration(MAX_INTERVAL)})",
    )
    parser.add_argument(
        "--timeout",
        type=flags.duration,
        default=flags.duration("30m"),
        metavar="DURATION",
        help="give up (exit 2) after this long (default: 30m)",
    )
    parser.add_argument(
        "--not-found-grace",
        dest="not_found_grace",
        type=flags.duration,
        default=NOT_FOUND_GRACE,
        metavar="DURATION",
        help="keep looking for a server Nova does not show yet for this long, then exit 3 "
        f"(default: {format_duration(NOT_FOUND_GRACE)})",
    )
    parser.add_argument(
        "--progress-interval",
        dest="progress_interval",
        type=flags.duration,
        default=flags.duration("30s"),
        metavar="DURATION",
        help="print a progress line at least this often while nothing changes (default: 30s)",
    )
    parser.add_argument(
        "--output",
        choices=OUTPUTS,
        default="text",
        help="text lines, or json: one JSON object per line (default: text)",
    )
    flags.add_config_flags(parser)
    add_local_flags(parser)


def run(args: argparse.Namespace) -> int:
    """Block until the server is ready; the exit code says how it ended."""
    if args.local == (args.server_id is not None):
        print("rackconnect-exporter wait: error: give SERVER_ID or --local", file=sys.stderr)
        return EXIT_USAGE
    if args.require_public_ip and (args.local or args.wait_for == "managed"):
        print(
            "rackconnect-exporter wait: error: --require-public-ip reads the RackConnect v3.0 "
            "API: give SERVER_ID, without --local or --for managed",
            file=sys.stderr,
        )
        return EXIT_USAGE
    timing: dict[str, Any] = {
        "wanted": args.wait_for,
        "interval": args.interval,
        "max_interval": args.max_interval,
        "timeout": args.timeout,
        "progress_interval": args.progress_interval,
        "output": args.output,
        "request_timeout": args.poll_timeout,
        "require_public_ip": args.require_public_ip,
        "out": sys.stdout,
        "err": sys.stderr,
    }
    waiter: Waiter | LocalWaiter
    if args.local:
        local = local_settings(args)
        waiter = LocalWaiter(
            base_url=local.url,
            region=local.region,
            rackconnect=local.rackconnect,
            managed=local.managed,
            managed_ops=local.managed_ops,
            **timing,
        )
    else:
        config = flags.configure(args)
        if config is None:
            return EXIT_USAGE
        waiter = Waiter(
            config,
            args.server_id,
            region=args.region,
            account=args.account,
            not_found_grace=args.not_found_grace,
            **timing,
        )
    try:
        return waiter.run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
