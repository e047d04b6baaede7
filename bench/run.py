"""Run the scale benchmark and print the table.

For each fleet size it starts the simulated cloud (one account, three regions), by
default behind a replay of its recorded answers (``bench/replay.py``), and the exporter,
each in its own process. It times the first full poll, an incremental poll and several
warm full polls of the unchanged fleet; scrapes the exporter, the same bytes from a
minimal static server (the floor for this machine) and a render-on-scrape
prometheus_client exporter holding the same records; then scrapes the exporter and the
floor in turn while full polls run every 2 s, first of an unchanged fleet, then of one
that changes before each poll (so regions render and compress again under scrape load).
A figure with too few samples behind it says so instead of a number.

Times are measured by this process's client (``bench/client.py``: keep-alive, raw
sockets, ``recv_into`` a reused buffer) from sending the request to the last body byte.
CPU time of a poll is ``time.process_time()`` of the exporter's process around it; peak
RSS is that process's ``VmHWM`` from ``/proc/self/status`` at the end of the run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Client

FORMATS = {
    "text": {"Accept": "text/plain"},
    "gzip": {"Accept": "text/plain", "Accept-Encoding": "gzip"},
    "openmetrics": {"Accept": "application/openmetrics-text; version=1.0.0"},
}
WARM_POLLS = 5  # full polls of the unchanged fleet after the first, for their CPU
WINDOWS = ("steady", "changing")  # full polls of an unchanged fleet / of a changing one
WINDOW_SECONDS = 8.0  # at least this long, so that several polls (every 2 s) overlap
WINDOW_MOST = 180.0  # ...and at most this long while collecting enough samples
UNCOMPRESSED_EVERY = 10  # during polls, text and OpenMetrics scrape once per 10 rounds
MIN_MEDIAN = 5  # fewer samples than these and the figure says "too few"
MIN_P99 = 100
NAIVE_MOST = 10_000  # render-on-scrape takes many seconds per scrape above this
USERNAME = "scale-user"
API_KEY = "scale0123456789abcdef0123456789ab"


@dataclass
class Result:
    """Everything measured for one fleet size."""

    servers: int
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


def start_simulator(servers: int) -> tuple[Proc, str]:
    sim = Proc(
        "exporter",
        "simulate",
        "--scenario=scale",
        f"--servers={servers}",
        "--step-interval=0",
        "--web.listen-address=127.0.0.1:0",
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


def measure(servers: int, budget: float, upstream: str) -> Result:
    result = Result(servers)
    sim, identity = start_simulator(servers)
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


def median(values: list[float]) -> float:
    """The median, or NaN when there are fewer than MIN_MEDIAN samples."""
    return statistics.median(values) if len(values) >= MIN_MEDIAN else float("nan")


def p99(values: list[float]) -> float:
    """The 99th percentile, or NaN when there are fewer than MIN_P99 samples."""
    if len(values) < MIN_P99:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def ms(seconds: float, n: int | None = None) -> str:
    if math.isnan(seconds):
        return "too few" if n is None else f"too few ({n})"
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _ratio(a: float, b: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) else f"{a / b:.{digits}f}x"


def spread(values: list[float], unit=None) -> str:
    """min / median / max of a few figures (each already a full measurement)."""
    unit = unit or ms
    if not values:
        return "none"
    return " / ".join(unit(v) for v in (min(values), statistics.median(values), max(values)))


def warm_cpu(r: Result) -> float:
    return statistics.median(p["cpu"] for p in r.warm)


def busy_ratio(r: Result, window: str, fmt: str = "gzip") -> float:
    """p99 of ours over p99 of the floor, scraped in turn in the same window."""
    return p99(r.busy[window][fmt]) / p99(r.busy_static[window][fmt])


def table(results: list[Result]) -> str:
    """The results as a Markdown table, one column per fleet size."""
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell) -> None:
        rows.append((label, [cell(r) for r in results]))

    for f in FORMATS:
        row(
            f"scrape {f}: median / p99",
            lambda r, f=f: f"{ms(median(r.ours[f]))} / {ms(p99(r.ours[f]), len(r.ours[f]))}",
        )
    for f in FORMATS:
        row(f"response bytes, {f}", lambda r, f=f: size(r.sizes[f]))
    for f in FORMATS:
        row(
            f"static floor, {f}: median (ours / floor)",
            lambda r, f=f: (
                f"{ms(median(r.static[f]))} ({_ratio(median(r.ours[f]), median(r.static[f]))})"
            ),
        )
    for f in FORMATS:
        row(
            f"render-on-scrape, {f}: median (it / ours)",
            lambda r, f=f: (
                f"{ms(median(r.naive[f]), len(r.naive[f]))} "
                f"({_ratio(median(r.naive[f]), median(r.ours[f]), 0)})"
                if r.naive
                else f"not run above {NAIVE_MOST:,}"
            ),
        )
    for w in WINDOWS:
        for f in FORMATS:
            row(
                f"scrape {f} during {w} full polls: median / p99 (p99 / floor's p99)",
                lambda r, f=f, w=w: (
                    f"{ms(median(r.busy[w][f]), len(r.busy[w][f]))} / "
                    f"{ms(p99(r.busy[w][f]), len(r.busy[w][f]))} "
                    f"({_ratio(p99(r.busy[w][f]), p99(r.busy_static[w][f]))})"
                ),
            )
        row(
            f"{w} window: polls, their CPU min / median / max, token-bucket wait",
            lambda r, w=w: (
                f"{len(r.windows[w])}; {spread([p['cpu'] for p in r.windows[w]])}; "
                f"{sum(p['throttled'] for p in r.windows[w]):.1f} s"
            ),
        )
    row("first full poll: wall / CPU", lambda r: f"{ms(r.full['wall'])} / {ms(r.full['cpu'])}")
    row(
        f"warm full poll, unchanged fleet: CPU min / median / max ({WARM_POLLS} polls)",
        lambda r: spread([p["cpu"] for p in r.warm]),
    )
    row(
        "warm full poll: wall min / median / max",
        lambda r: spread([p["wall"] for p in r.warm]),
    )
    row(
        "full poll: requests (per region)",
        lambda r: f"{r.full['requests']} ({r.full['requests'] / 3:g})",
    )
    row(
        "incremental poll, nothing changed: wall / CPU",
        lambda r: f"{ms(r.delta['wall'])} / {ms(r.delta['cpu'])}",
    )
    row(
        "incremental poll, nothing changed: requests (per region)",
        lambda r: f"{r.delta['requests']} ({r.delta['requests'] / 3:g})",
    )
    row("exporter peak RSS (at start)", lambda r: f"{size(r.rss_peak)} ({size(r.rss_start)})")
    if len(results) > 1:
        a, b = results[-2], results[-1]
        per = b.servers - a.servers
        growth = (
            f"RSS {(b.rss_peak - a.rss_peak) / per / 1024:.1f} KiB, "
            f"text {(b.sizes['text'] - a.sizes['text']) / per / 1024:.2f} KiB, "
            f"gzip {(b.sizes['gzip'] - a.sizes['gzip']) / per:.0f} B, "
            f"warm-poll CPU {(warm_cpu(b) - warm_cpu(a)) / per * 1e6:.1f} us, "
            f"text scrape {(median(b.ours['text']) - median(a.ours['text'])) / per * 1e6:.2f} us"
        )
        label = f"growth per server, {a.servers:,} to {b.servers:,}"
        rows.append((label, [""] * (len(results) - 1) + [growth]))
    header = "| | " + " | ".join(f"{r.servers:,} servers" for r in results) + " |"
    lines = [header, "| --- |" + " --- |" * len(results)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


def targets(r: Result) -> list[tuple[bool, str]]:
    """The goals for this fleet size on a 2-core machine, and whether they were met."""
    out = []
    if r.servers == 10_000:
        cpu = warm_cpu(r)
        out.append((cpu <= 0.17, f"warm full poll: at most 0.17 s of CPU ({cpu:.3f} s median)"))
        out.append((r.rss_peak <= 100e6, f"peak RSS at most 100 MB ({r.rss_peak / 1e6:.0f} MB)"))
        ratio = busy_ratio(r, "steady")
        out.append(
            (
                ratio <= 1.5,
                f"gzip scrape p99 during full polls at most 1.5x the floor's ({ratio:.2f}x)",
            )
        )
    elif r.servers == 50_000:
        out.append((r.rss_peak <= 300e6, f"peak RSS at most 300 MB ({r.rss_peak / 1e6:.0f} MB)"))
    return out


def across(runs: list[Result]) -> list[str]:
    """min / median / max over the runs of one size, for the figures the goals name."""
    return [
        f"- warm full poll CPU (each run's median): {spread([warm_cpu(r) for r in runs])}",
        f"- peak RSS: {spread([r.rss_peak for r in runs], size)}",
        "- gzip p99 during steady polls / floor's: "
        + spread([busy_ratio(r, "steady") for r in runs], lambda v: f"{v:.2f}x"),
        "- gzip p99 during changing polls / floor's: "
        + spread([busy_ratio(r, "changing") for r in runs], lambda v: f"{v:.2f}x"),
        f"- first full poll CPU: {spread([r.full['cpu'] for r in runs])}",
    ]


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
    parser.add_argument("--json", metavar="PATH", help="also write the raw results here")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.servers.split(",") if n.strip()]
    runs: dict[int, list[Result]] = {}
    for n in sizes:
        for i in range(args.runs):
            print(f"measuring {n:,} servers, run {i + 1}...", file=sys.stderr, flush=True)
            runs.setdefault(n, []).append(measure(n, args.budget, args.upstream))
    results = [runs[n][-1] for n in sizes]
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}` on Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print(table(results))
    for n in sizes:
        goals = [g for r in runs[n] for g in targets(r)]
        if args.runs > 1:
            print(f"\nAcross {args.runs} runs at {n:,} servers (min / median / max):")
            print("\n".join(across(runs[n])))
        if goals:
            print(f"\nGoals at {n:,} servers, each run:")
            for met, text in goals:
                print(f"- [{'x' if met else ' '}] {text}")
    if args.json:
        raw = {n: [r.__dict__ for r in rs] for n, rs in runs.items()}
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
