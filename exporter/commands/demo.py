"""``demo``: the simulated cloud and the exporter against it, in one process.

The simulator is imported only when the demo runs, so the other commands never load it.
"""

from __future__ import annotations

import argparse
import sys

from exporter.commands import flags, simulate
from exporter.commands.flags import parse_listen_address
from exporter.commands.serve import run_exporter
from exporter.config import AccountConfig, Config, merge_metadata_labels
from exporter.errors import EXIT_FAILURE, EXIT_USAGE, UsageError
from exporter.logs import logger
from exporter.web.server import ExporterHTTPServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` flags: those of ``serve`` it uses, and the simulated cloud's.

    The accounts are the simulator's: ``--config.file`` and the shard flags are not offered.
    """
    flags.add_web_flags(parser)
    flags.add_poll_interval_flag(parser, "10s", "how often to poll every account and region")
    flags.add_scale_flags(parser)
    flags.add_metadata_label_flag(parser)
    flags.add_poll_timeout_flag(parser)
    flags.add_log_flags(parser)
    parser.add_argument(
        "--simulator.listen-address",
        dest="simulator_address",
        type=flags.listen_address,
        default=parse_listen_address("127.0.0.1:10055"),
        metavar="[HOST]:PORT",
        help="address of the simulated cloud (default: 127.0.0.1:10055)",
    )
    simulate.add_step_interval_flag(parser)
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated fleet")


def run(args: argparse.Namespace) -> int:
    """Start the simulated cloud, then the exporter polling it, until SIGTERM or SIGINT."""
    labels = flags.metadata_labels(args)
    flags.setup_logging(args)
    try:
        step = simulate.step_interval(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    web = flags.web(args)
    if web is None:
        return EXIT_USAGE

    from exporter.simulator import Scenario, Simulator  # noqa: PLC0415 (only the demo needs it)

    simulator = Simulator(Scenario.demo(seed=args.seed), step_interval=step)
    host, port = args.simulator_address
    try:
        simulator.start(host=host or "127.0.0.1", port=port)
    except OSError as exc:
        logger.error("cannot start the simulated cloud", extra={"err": exc.strerror})
        return EXIT_FAILURE
    config = merge_metadata_labels(
        Config(
            tuple(
                AccountConfig(
                    name=account.name,
                    username=account.username,
                    api_key=account.api_key,
                    identity_url=simulator.identity_url,
                    generations=("next", "first") if account.first_gen else ("next",),
                )
                for account in simulator.accounts
            )
        ),
        labels,
    )

    def announce(httpd: ExporterHTTPServer) -> None:
        print(
            "\nrackconnect-exporter demo: a simulated Rackspace cloud and the exporter.\n"
            f"  landing page    {httpd.url}/\n"
            f"  metrics         {httpd.url}{web.telemetry_path}\n"
            f"  simulated cloud {simulator.base_url}/v2.0/ (control API: "
            f"{simulator.base_url}/_control/servers)\n"
            "Press Ctrl+C to stop.\n",
            file=sys.stdout,
            flush=True,
        )

    try:
        return run_exporter(config, flags.poll_settings(args), web, announce=announce)
    finally:
        simulator.stop()
