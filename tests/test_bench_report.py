"""The benchmark's comparison with and without RackConnect v3.0, from figures made here."""

from __future__ import annotations

from bench.report import compare_v3, table
from bench.run import Result


def result(cpu: float, rss: int, scrape: float, *, v3: bool) -> Result:
    r = Result(10_000, rackconnect_v3=v3, rss_peak=rss)
    r.warm = [{"cpu": cpu, "wall": cpu}]
    r.busy = {"steady": {"gzip": [scrape] * 100}}
    r.busy_static = {"steady": {"gzip": [0.001] * 100}}
    return r


def test_the_goals_hold_v3_to_one_and_a_half_times_without() -> None:
    without = [result(0.050, 90 << 20, 0.0011, v3=False)]
    within = compare_v3(without, [result(0.070, 120 << 20, 0.0013, v3=True)])
    assert [met for met, _ in within] == [True, True, None]
    assert within[0][1] == (
        "warm full poll CPU with v3.0 at most 1.5x without: 70.00 ms against 50.00 ms (1.40x)"
    )
    assert within[2][1] == "gzip p99 during steady polls / floor's: 1.30x with v3.0, 1.10x without"
    beyond = compare_v3(without, [result(0.112, 151 << 20, 0.0014, v3=True)])
    assert [met for met, _ in beyond] == [False, False, None]
    assert "151.0 MiB against 90.0 MiB (1.68x)" in beyond[1][1]


def test_the_table_has_a_column_per_side() -> None:
    sides = []
    for v3 in (False, True):
        r = result(0.05, 90 << 20, 0.001, v3=v3)
        r.full = r.delta = {"wall": 0.1, "cpu": 0.05, "requests": 12, "requests_v3": 12 * v3}
        r.sizes = {"text": 1, "gzip": 1, "openmetrics": 1}
        r.ours = r.static = {f: [0.001] * 100 for f in ("text", "gzip", "openmetrics")}
        r.busy = r.busy_static = dict.fromkeys(("steady", "changing"), r.ours)
        r.windows = {"steady": [], "changing": []}
        sides.append(r)
    out = table(sides)
    assert out.splitlines()[0] == "| | 10,000 servers | 10,000 servers, RackConnect v3.0 |"
    assert "| full poll: RackConnect v3.0 requests (per region) | 0 (0) | 12 (4) |" in out
    assert "growth per server" not in out  # only between sizes of the same kind
