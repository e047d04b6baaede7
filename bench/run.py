"""Run the scale benchmark and print the table.

For each fleet size it starts the simulated cloud (one account, three regions), by
default behind a replay of its recorded answers (``bench/replay.py``), and the exporter,
each in its own process. It times the first full poll, an incremental poll and several
warm full polls of the unchanged fleet; scrapes the exporter, the same bytes from a
minimal static server (the floor for this machine) and a render-on-scrape
prometheus_client exporter holding the same records; then scrapes the exporter and the
floor in turn while full polls run every 2 s, first of an unchanged fleet, then of one
that changes before each poll (so regions render and compress again under scrape load).
A figure with too few samples behind it says so instead of a number. With
``--rackconnect-v3`` each size is measured again with every region a RackConnect v3.0
region, where each server has a public IP and a load balancer pool membership, and the
two are compared.

Times are measured by this process's client (``bench/client.py``: keep-alive, raw
sockets, ``recv_into`` a reused buffer) from sending the request to the last body byte.
CPU time of a poll is ``time.process_time()`` of the exporter's process around it; peak
RSS is that process's ``VmHWM`` from ``/proc/self/status`` at the end of the run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Client
from bench.report import (
    FORMATS,
    MIN_MEDIAN,
    MIN_P99,
    NAIVE_MOST,
    UNCOMPRESSED_EVERY,
    WARM_POLLS,
    WINDOW_MOST,
    WINDOW_SECONDS,
    WINDOWS,
    across,
    compare_v3,
    table,
    targets,
)

USERNAME = "scale-user"
API_KEY = "scale0123456789abcdef0123456789ab"


@dataclass
class Result:
    """Everything measured for one fleet size."""

    servers: int
    rackconnect_v3: bool = False
    full: dict = field(default_factory=dict)
    delta: dict = field(default_factory=dict)
    warm: list[dict] = field(default_factory=list)
    windows: dict[str, list[dict]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    ours: dict[str, list[float]] = field(default_factory=dict)
    static: dict[str, list[float]] = field(default_factory=dict)
    naive: dict[str, list[float]] = field(default_factory=dict)
    busy: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    busy_static: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    rss_start: int = 0
    rss_peak: int = 0


class Proc:
    """A child process that answers one JSON line per command."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def line(self) -> str:
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        if not text:
            raise RuntimeError(f"{self.proc.args} exited with {self.proc.wait()}")
        return text

    def ask(self, command: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.line())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_simulator(servers: int, rackconnect_v3: bool = False) -> tuple[Proc, str]:
    sim = Proc(
        "exporter",
        "simulate",
        "--scenario=scale",
        f"--servers={servers}",
        "--simulator.step-interval=0",
        "--web.listen-address=127.0.0.1:0",
        *(["--rackconnect-v3"] if rackconnect_v3 else []),
    )
    while True:
        match = re.match(r"Identity v2\.0:\s+(\S+)", sim.line())
        if match:
            return sim, match.group(1)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def scrape_series(
    port: int, headers: dict[str, str], budget: float, most: int, least: int = 5
) -> list[float]:
    """Latencies of back-to-back scrapes: at least ``least``, then until the budget ends."""
    client = Client("127.0.0.1", port)
    try:
        for _ in range(2):  # warm up the connection and the caches
            client.get("/metrics", headers)
        out: list[float] = []
        deadline = time.monotonic() + budget
        while len(out) < most and (len(out) < least or time.monotonic() < deadline):
            status, _, seconds = client.get("/metrics", headers)
            assert status == 200, status
            out.append(seconds)
        return out
    finally:
        client.close()


def body_of(port: int, headers: dict[str, str], path: Path) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", "/metrics", headers=headers)
    body = conn.getresponse().read()
    conn.close()
    path.write_bytes(body)
    return len(body)


def busy_window(
    exporter: Proc, change: bool, targets: dict[str, int], result: Result, name: str
) -> None:
    """Scrape ours and the floor in turn while full polls run every 2 s in the exporter.

    Gzip is scraped every round (the format Prometheus asks for); text and OpenMetrics
    every UNCOMPRESSED_EVERY rounds, so that one round stays short at any fleet size.
    """
    exporter.ask("start change" if change else "start")
    clients = {(t, f): Client("127.0.0.1", p) for t, p in targets.items() for f in FORMATS}
    ours = result.busy[name] = {f: [] for f in FORMATS}
    floor = result.busy_static[name] = {f: [] for f in FORMATS}
    began, rounds = time.monotonic(), 0
    try:
        while True:
            elapsed = time.monotonic() - began
            if elapsed > WINDOW_MOST or (
                elapsed > WINDOW_SECONDS and min(len(ours["gzip"]), len(floor["gzip"])) >= MIN_P99
            ):
                break
            for (target, fmt), client in clients.items():
                if fmt != "gzip" and rounds % UNCOMPRESSED_EVERY:
                    continue
                status, _, seconds = client.get("/metrics", FORMATS[fmt])
                assert status == 200
                (ours if target == "ours" else floor)[fmt].append(seconds)
            rounds += 1
    finally:
        result.windows[name] = exporter.ask("stop")["polls"]
        for client in clients.values():
            client.close()


def measure(servers: int, budget: float, upstream: str, rackconnect_v3: bool = False) -> Result:
    result = Result(servers, rackconnect_v3)
    sim, identity = start_simulator(servers, rackconnect_v3)
    origin = identity.split("/v2.0", 1)[0]
    exporter = naive = static = replay = None
    try:
        replay_origin = ""
        if upstream == "replay":
            replay = Proc("bench.replay", origin)
            replay_origin = replay.line().strip()
            identity = replay_origin + "/v2.0/"
        exporter = Proc("bench.exporter_proc", identity, USERNAME, API_KEY, origin, replay_origin)
        started = json.loads(exporter.line())
        result.rss_start = started["rss"]
        port = port_of(started["url"])
        result.full = exporter.ask("poll full")
        result.delta = exporter.ask("poll")
        result.warm = [exporter.ask("poll full") for _ in range(WARM_POLLS)]
        if not all(p["up"] for p in (result.full, result.delta, *result.warm)):
            raise RuntimeError("a poll of the simulated cloud failed")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, headers in (
                ("text", FORMATS["text"]),
                ("text.gz", FORMATS["gzip"]),
                ("om", FORMATS["openmetrics"]),
                ("om.gz", {**FORMATS["openmetrics"], "Accept-Encoding": "gzip"}),
            ):
                size = body_of(port, headers, folder / name)
                result.sizes[{"text.gz": "gzip", "om": "openmetrics"}.get(name, name)] = size
            static = Proc("bench.static", str(folder))
            static_port = int(static.line())
            if servers <= NAIVE_MOST:
                naive = Proc("bench.naive", identity, USERNAME, API_KEY)
                naive_port = int(naive.line())
            for fmt, headers in FORMATS.items():
                result.ours[fmt] = scrape_series(port, headers, budget, 2000, least=MIN_P99)
                result.static[fmt] = scrape_series(static_port, headers, budget, 2000, MIN_P99)
                if naive is not None:
                    result.naive[fmt] = scrape_series(naive_port, headers, budget, 50, MIN_MEDIAN)
        # Scrapes while full polls run, interleaved with the same scrapes of the static
        # server: the floor's own slowdown shows what the machine loses to the poll (and,
        # against the simulator, to its JSON encoding) competing for the cores.
        targets = {"ours": port, "static": static_port}
        for name in WINDOWS:
            busy_window(exporter, name == "changing", targets, result, name)
        result.rss_peak = exporter.ask("memory")["rss_peak"]
    finally:
        for proc in (exporter, naive, static, replay, sim):
            if proc is not None:
                proc.stop()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--servers",
        default="1000,10000,50000,100000",
        help="comma-separated fleet sizes (default: %(default)s)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=5.0,
        help="seconds of back-to-back scrapes per target and format (default: %(default)s)",
    )
    parser.add_argument(
        "--upstream",
        choices=("replay", "simulator"),
        default="replay",
        help="answer polls from recorded pages (the exporter's own cost) or from the "
        "simulator itself (default: %(default)s)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="runs per size; the table shows the last"
    )
    parser.add_argument(
        "--rackconnect-v3",
        dest="rackconnect_v3",
        action="store_true",
        help="measure each size again with RackConnect v3.0 (a public IP and a pool "
        "membership per server) and compare the two",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw results here")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.servers.split(",") if n.strip()]
    kinds = (False, True) if args.rackconnect_v3 else (False,)
    runs: dict[int, list[Result]] = {}
    v3_runs: dict[int, list[Result]] = {}
    for n in sizes:
        for v3 in kinds:
            for i in range(args.runs):
                what = " with RackConnect v3.0" if v3 else ""
                print(f"measuring {n:,} servers{what}, run {i + 1}...", file=sys.stderr, flush=True)
                found = measure(n, args.budget, args.upstream, v3)
                (v3_runs if v3 else runs).setdefault(n, []).append(found)
    results = [r for n in sizes for r in (runs[n][-1], *v3_runs.get(n, [])[-1:])]
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}` on Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print(table(results))
    for n in sizes:
        goals = [g for r in runs[n] for g in targets(r)]
        if args.runs > 1:
            print(f"\nAcross {args.runs} runs at {n:,} servers (min / median / max):")
            print("\n".join(across(runs[n])))
            if n in v3_runs:
                print(f"\nWith RackConnect v3.0, across {args.runs} runs at {n:,} servers:")
                print("\n".join(across(v3_runs[n])))
        if n in v3_runs:
            print(f"\nWith RackConnect v3.0 at {n:,} servers, against without (medians of runs):")
            compared = compare_v3(runs[n], v3_runs[n])
            print("\n".join(f"- {text}" for met, text in compared if met is None))
            goals += [(met, text) for met, text in compared if met is not None]
        if goals:
            print(f"\nGoals at {n:,} servers, each run:")
            for met, text in goals:
                print(f"- [{'x' if met else ' '}] {text}")
    if args.json:
        raw = {n: [r.__dict__ for r in (*rs, *v3_runs.get(n, []))] for n, rs in runs.items()}
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
