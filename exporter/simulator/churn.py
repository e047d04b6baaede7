"""How the simulated fleet evolves on its own, one step at a time.

Each step advances every server whose build or automation is still running by one stage
(BUILD -> ACTIVE, RackConnect DEPLOYING -> an outcome, Managed Operations Pending -> In
Progress -> an outcome) and creates and deletes a few servers per region, drifting back
towards the region's starting size. The draws come from the fleet's seeded generator, so
a run is repeatable.
"""

from __future__ import annotations

from exporter.simulator.fleet import Fleet
from exporter.simulator.records import Server, norm
from exporter.simulator.scenario import (
    FIRST_GEN_REGION,
    MO_STATUS,
    RC_REASON,
    RC_STATUS,
    mismatch_reason,
    rc_metadata,
)


def step(fleet: Fleet) -> None:
    """Advance every in-progress server one stage; create and delete a few servers."""
    with fleet.lock:
        fleet.steps += 1
        for sid in list(fleet.pipeline):
            _advance(fleet, fleet.by_id[sid])
        for (name, region), seq in fleet.lists.items():
            key = (name, region)
            live, target = fleet.live[key], fleet.targets[key]
            p_new, p_del = 0.25, 0.25
            if live < target:
                p_new, p_del = 0.4, 0.1
            elif live > target:
                p_new, p_del = 0.1, 0.4
            if region == FIRST_GEN_REGION:
                p_new, p_del = p_new / 4, p_del / 4
            if fleet.rng.random() < p_new:
                gen = "first" if region == FIRST_GEN_REGION else "next"
                fleet.create(fleet.accounts[name], region, None, {}, generation=gen, status="BUILD")
            if fleet.rng.random() < p_del and live > 2:
                _delete_random(fleet, seq)


def _delete_random(fleet: Fleet, seq: list[Server]) -> None:
    for _ in range(8):
        victim = seq[fleet.rng.randrange(len(seq))]
        if victim.deleted_at is None and victim.id not in fleet.pipeline and not victim.kept:
            fleet.remove(victim)
            return


def _advance(fleet: Fleet, s: Server) -> None:
    rng = fleet.rng
    acct = s.account
    s.age += 1
    if s.status == "BUILD":
        s.status, s.progress = "ACTIVE", 100
        if acct.rackconnect:
            s.metadata.update(rc_metadata("DEPLOYING", acct.feature_value))
        fleet.touch(s)
        return
    rc = norm(s.metadata.get(RC_STATUS))
    if acct.rackconnect and rc is None:
        s.metadata.update(rc_metadata("DEPLOYING", acct.feature_value))
        fleet.touch(s)
        return
    if acct.rackconnect and rc == "DEPLOYING":
        if s.age < 2 and rng.random() < 0.5:
            return
        roll = rng.random()
        outcome: str | None
        if s.generation == "first":
            outcome = "DEPLOYED" if roll < 0.92 else "FAILED"
        else:
            outcome = "DEPLOYED" if roll < 0.85 else "FAILED" if roll < 0.93 else None
        if outcome is None:
            s.metadata[RC_STATUS] = "UNPROCESSABLE"
            rc_region = acct.rackconnect_region
            s.metadata[RC_REASON] = (
                mismatch_reason(s.region, rc_region)
                if rc_region != s.region
                else "Cloud server is not attached to the RackConnect cloud network"
            )
        else:
            s.metadata[RC_STATUS] = outcome
        fleet.touch(s)
        return
    mo = s.metadata.get(MO_STATUS)
    if mo is None:
        s.metadata[MO_STATUS] = "Pending"
    elif mo == "Pending":
        s.metadata[MO_STATUS] = "In Progress"
    elif mo == "In Progress":
        if s.age < 2 and rng.random() < 0.3:
            return
        roll = rng.random()
        s.metadata[MO_STATUS] = (
            "Complete" if roll < 0.85 else "Build Error" if roll < 0.95 else "Authentication Error"
        )
    fleet.touch(s)
