"""What the ``simulate`` command builds from its flags (exporter/commands/simulate.py)."""

from __future__ import annotations

import argparse
from typing import TextIO

from exporter.flags import parse_duration, parse_listen_address
from exporter.simulator.core import Simulator
from exporter.simulator.scenario import Scenario


def _duration_or_zero(text: str) -> float:
    if text.strip() == "0":
        return 0.0
    return parse_duration(text)


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
