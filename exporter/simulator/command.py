"""What the ``simulate`` command (exporter/commands/simulate.py) prints about the simulator."""

from __future__ import annotations

from typing import TextIO

from exporter.simulator.core import Simulator


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
