"""The ``simulate`` subcommand: serve only the simulated Rackspace cloud."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TextIO

from exporter.flags import parse_duration, parse_listen_address
from exporter.simulator.core import Simulator
from exporter.simulator.scenario import Scenario


def _duration_or_zero(text: str) -> float:
    if text.strip() == "0":
        return 0.0
    return parse_duration(text)


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
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--step-interval",
        default="5s",
        help="time between fleet evolution steps; 0 disables (default: %(default)s)",
    )
    parser.add_argument(
        "--token-lifetime",
        default="24h",
        help="lifetime of issued tokens (default: %(default)s)",
    )


def build(args: argparse.Namespace) -> tuple[Simulator, str, int]:
    """Validate the flags and build the simulator; ValueError explains a bad flag."""
    host, port = parse_listen_address(args.web_listen_address)
    step = _duration_or_zero(args.step_interval)
    lifetime = parse_duration(args.token_lifetime)
    if lifetime <= 0:
        raise ValueError("--token-lifetime must be positive")
    if args.scenario == "scale":
        if args.servers < 0:
            raise ValueError("--servers must not be negative")
        scenario = Scenario.scale(servers=args.servers, seed=args.seed)
    else:
        scenario = Scenario.demo(seed=args.seed)
    sim = Simulator(scenario, step_interval=step or None, token_lifetime=lifetime)
    return sim, host, port


def describe(sim: Simulator, out: TextIO) -> None:
    """Print the URLs and the fake credentials of every account."""
    print(f"Identity v2.0:  {sim.identity_url}", file=out)
    print(f"Identity v1.0:  {sim.auth_v1_url}", file=out)
    print(f"Control API:    {sim.control_url}", file=out)
    print(f"RackConnect:    {sim.base_url}/rackconnect/<server_id>", file=out)
    print("Accounts (fake credentials):", file=out)
    for a in sim.accounts:
        features = [
            f
            for f, on in (
                ("rackconnect", a.rackconnect),
                ("managed", a.managed),
                ("first-gen", a.first_gen),
            )
            if on
        ]
        print(
            f"  {a.name}: username={a.username} api_key={a.api_key} password={a.password} "
            f"tenant={a.tenant_id} regions={','.join(a.regions)} "
            f"[{', '.join(features) or 'plain'}]",
            file=out,
        )
    out.flush()


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 3 on a bad flag or address."""
    try:
        sim, host, port = build(args)
        sim.start(host=host, port=port)
    except (ValueError, OSError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 3
    describe(sim, sys.stdout)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
