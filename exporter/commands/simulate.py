"""``simulate``: serve only the simulated Rackspace cloud.

The simulator is imported only when this command runs, so the other commands never load it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from exporter.commands.flags import parse_listen_address
from exporter.commands.lifecycle import Signals
from exporter.durations import parse_duration
from exporter.errors import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from exporter.simulator import Simulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` flags to a parser."""
    parser.add_argument(
        "--web.listen-address",
        dest="web_listen_address",
        default="127.0.0.1:10055",
        help="address to serve the simulated cloud on (default: %(default)s)",
    )
    parser.add_argument(
        "--scenario",
        choices=("demo", "scale"),
        default="demo",
        help="starting fleet: three demo accounts, or one large account (default: %(default)s)",
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=1000,
        help="number of servers for --scenario scale (default: %(default)s)",
    )
    parser.add_argument(
        "--rackconnect-v3",
        dest="rackconnect_v3",
        action="store_true",
        help="with --scenario scale: every region is a RackConnect v3.0 region, and every "
        "server has a public IP and a load balancer pool membership",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    add_step_interval_flag(parser)
    # The spelling before the simulator's flags were dotted, kept working.
    parser.add_argument(
        "--step-interval", dest="step_interval", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--token-lifetime",
        default="24h",
        help="lifetime of issued tokens (default: %(default)s)",
    )


def add_step_interval_flag(parser: argparse.ArgumentParser) -> None:
    """``--simulator.step-interval``, as ``simulate`` and ``demo`` spell it."""
    parser.add_argument(
        "--simulator.step-interval",
        dest="step_interval",
        default="5s",
        metavar="DURATION",
        help="how often the simulated fleet changes; 0 to freeze it (default: 5s)",
    )


def step_interval(args: argparse.Namespace) -> float | None:
    """Seconds between the simulated fleet's steps, None when frozen; ValueError if bad."""
    try:
        return parse_duration(args.step_interval) or None
    except ValueError as exc:
        raise ValueError(f"--simulator.step-interval: {exc}") from exc


def build(args: argparse.Namespace) -> tuple[Simulator, str, int]:
    """Validate the flags and build the simulator; ValueError explains a bad flag."""
    from exporter.simulator import Scenario, Simulator  # noqa: PLC0415 (only this command)

    host, port = parse_listen_address(args.web_listen_address)
    step = step_interval(args)
    lifetime = parse_duration(args.token_lifetime)
    if lifetime <= 0:
        raise ValueError("--token-lifetime must be positive")
    if args.scenario == "scale":
        if args.servers < 0:
            raise ValueError("--servers must not be negative")
        scenario = Scenario.scale(
            servers=args.servers, seed=args.seed, rackconnect_v3=args.rackconnect_v3
        )
    elif args.rackconnect_v3:
        raise ValueError("--rackconnect-v3 needs --scenario scale")
    else:
        scenario = Scenario.demo(seed=args.seed)
    sim = Simulator(scenario, step_interval=step, token_lifetime=lifetime)
    return sim, host, port


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; EXIT_USAGE on a bad flag or address."""
    from exporter.simulator.command import describe  # noqa: PLC0415 (only this command)

    try:
        sim, host, port = build(args)
        sim.start(host=host, port=port)
    except (ValueError, OSError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    describe(sim, sys.stdout)
    try:
        with Signals(reload=False) as signals:
            signals.wait()
    finally:
        sim.stop()
    return EXIT_OK
