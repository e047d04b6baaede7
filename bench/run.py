"""Run the scale benchmark and print the table.

For each fleet size it starts the simulated cloud (one account, three regions) and the
exporter, each in its own process, times a full poll and an incremental poll, then
scrapes the exporter, the same bytes from a minimal static server (the floor for this
machine) and a render-on-scrape prometheus_client exporter holding the same records, and
finally scrapes the exporter while it runs another full poll.

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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.client import Client

FORMATS = {
    "text": {"Accept": "text/plain"},
    "gzip": {"Accept": "text/plain", "Accept-Encoding": "gzip"},
    "openmetrics": {"Accept": "application/openmetrics-text; version=1.0.0"},
}
BUSY_POLLS = 3  # full polls in a row while scraping, for enough samples
USERNAME = "scale-user"
API_KEY = "scale0123456789abcdef0123456789ab"


@dataclass
class Result:
    """Everything measured for one fleet size."""

    servers: int
    full: dict = field(default_factory=dict)
    delta: dict = field(default_factory=dict)
    during: dict = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    ours: dict[str, list[float]] = field(default_factory=dict)
    static: dict[str, list[float]] = field(default_factory=dict)
    naive: dict[str, list[float]] = field(default_factory=dict)
    busy: dict[str, list[float]] = field(default_factory=dict)
    busy_static: dict[str, list[float]] = field(default_factory=dict)
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
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", "/metrics", headers=headers)
    body = conn.getresponse().read()
    conn.close()
    path.write_bytes(body)
    return len(body)


def measure(servers: int, budget: float) -> Result:
    result = Result(servers)
    sim, identity = start_simulator(servers)
    exporter = naive = static = None
    try:
        exporter = Proc("bench.exporter_proc", identity, USERNAME, API_KEY)
        started = json.loads(exporter.line())
        result.rss_start = started["rss"]
        port = port_of(started["url"])
        result.full = exporter.ask("poll full")
        result.delta = exporter.ask("poll")
        if not (result.full["up"] and result.delta["up"]):
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
            naive = Proc("bench.naive", identity, USERNAME, API_KEY)
            naive_port = int(naive.line())
            for fmt, headers in FORMATS.items():
                result.ours[fmt] = scrape_series(port, headers, budget, 2000)
                result.static[fmt] = scrape_series(static_port, headers, budget, 2000)
                result.naive[fmt] = scrape_series(naive_port, headers, budget, 50, least=3)
        # Scrapes while full polls run, round-robin over the formats, of the exporter and
        # of the static server: the floor's own slowdown shows what the machine loses to
        # the simulator and the poll competing for its cores.
        exporter.ask(f"start full {BUSY_POLLS}")
        done = threading.Event()
        waiter = threading.Thread(
            target=lambda: (result.during.update(exporter.ask("wait")), done.set())
        )
        waiter.start()
        targets = {"ours": port, "static": static_port}
        clients = {(t, f): Client("127.0.0.1", p) for t, p in targets.items() for f in FORMATS}
        result.busy = {f: [] for f in FORMATS}
        result.busy_static = {f: [] for f in FORMATS}
        while not done.is_set():
            for (target, fmt), client in clients.items():
                status, _, seconds = client.get("/metrics", FORMATS[fmt])
                assert status == 200
                if not done.is_set():
                    (result.busy if target == "ours" else result.busy_static)[fmt].append(seconds)
        waiter.join()
        for client in clients.values():
            client.close()
        result.rss_peak = exporter.ask("memory")["rss_peak"]
    finally:
        for proc in (exporter, naive, static, sim):
            if proc is not None:
                proc.stop()
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _ratio(a: float, b: float, digits: int = 2) -> str:
    return f"{a / b:.{digits}f}x"


def table(results: list[Result]) -> str:
    """The results as a Markdown table, one column per fleet size."""
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell) -> None:
        rows.append((label, [cell(r) for r in results]))

    for f in FORMATS:
        row(
            f"scrape {f}: median / p99",
            lambda r, f=f: f"{ms(median(r.ours[f]))} / {ms(p99(r.ours[f]))}",
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
                f"{ms(median(r.naive[f]))} ({_ratio(median(r.naive[f]), median(r.ours[f]), 0)})"
            ),
        )
    for f in FORMATS:
        row(
            f"scrape {f} during full polls: median (/ idle)",
            lambda r, f=f: (
                f"{ms(median(r.busy[f]))} ({_ratio(median(r.busy[f]), median(r.ours[f]))})"
            ),
        )
    for f in FORMATS:
        row(
            f"static floor, {f}, during the same polls (/ idle)",
            lambda r, f=f: (
                f"{ms(median(r.busy_static[f]))} "
                f"({_ratio(median(r.busy_static[f]), median(r.static[f]))})"
            ),
        )
    for name, key in (("full poll", "full"), ("incremental poll, nothing changed", "delta")):
        row(
            f"{name}: wall / CPU",
            lambda r, k=key: f"{ms(getattr(r, k)['wall'])} / {ms(getattr(r, k)['cpu'])}",
        )
        row(
            f"{name}: requests (per region)",
            lambda r, k=key: f"{getattr(r, k)['requests']} ({getattr(r, k)['requests'] / 3:g})",
        )
    row("exporter peak RSS (at start)", lambda r: f"{size(r.rss_peak)} ({size(r.rss_start)})")
    if len(results) > 1:
        a, b = results[-2], results[-1]
        per = b.servers - a.servers
        growth = (
            f"RSS {(b.rss_peak - a.rss_peak) / per / 1024:.1f} KiB, "
            f"text {(b.sizes['text'] - a.sizes['text']) / per / 1024:.2f} KiB, "
            f"gzip {(b.sizes['gzip'] - a.sizes['gzip']) / per:.0f} B, "
            f"full-poll CPU {(b.full['cpu'] - a.full['cpu']) / per * 1e6:.0f} us, "
            f"text scrape {(median(b.ours['text']) - median(a.ours['text'])) / per * 1e6:.2f} us"
        )
        label = f"growth per server, {a.servers:,} to {b.servers:,}"
        rows.append((label, [""] * (len(results) - 1) + [growth]))
    header = "| | " + " | ".join(f"{r.servers:,} servers" for r in results) + " |"
    lines = [header, "| --- |" + " --- |" * len(results)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


TARGET_SERVERS = 10_000


def targets(r: Result) -> list[tuple[bool, str]]:
    """The goals set for 10,000 servers on a 2-core machine, and whether they were met."""
    out = []
    for f in FORMATS:
        floor = median(r.ours[f]) / median(r.static[f])
        naive = median(r.naive[f]) / median(r.ours[f])
        out.append((floor <= 2, f"{f}: median scrape within 2x of the static floor ({floor:.2f}x)"))
        out.append((naive >= 50, f"{f}: at least 50x faster than render-on-scrape ({naive:.0f}x)"))
        busy = median(r.busy[f]) / median(r.ours[f])
        floor_busy = median(r.busy_static[f]) / median(r.static[f])
        out.append(
            (
                busy <= 2,
                f"{f}: a scrape during a poll at most 2x slower ({busy:.2f}x; "
                f"the static floor slows {floor_busy:.2f}x during the same polls)",
            )
        )
    per_region = r.full["requests"] / 3
    out.append((per_region <= 11, f"full poll: at most 11 requests per region ({per_region:g})"))
    out.append((r.full["cpu"] < 2, f"full poll: under 2 s of CPU ({r.full['cpu']:.2f} s)"))
    delta = r.delta["requests"] / 3
    out.append((delta == 1, f"incremental poll, no change: 1 request per region ({delta:g})"))
    rss = r.rss_peak / 2**20
    out.append((rss < 200, f"peak RSS under 200 MB ({rss:.0f} MiB)"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--servers",
        default="1000,10000,50000",
        help="comma-separated fleet sizes (default: %(default)s)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=5.0,
        help="seconds of back-to-back scrapes per target and format (default: %(default)s)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw results here")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.servers.split(",") if n.strip()]
    results = []
    for n in sizes:
        print(f"measuring {n:,} servers...", file=sys.stderr, flush=True)
        results.append(measure(n, args.budget))
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}` on Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    print(table(results))
    for result in results:
        if result.servers == TARGET_SERVERS:
            print(f"\nTargets at {TARGET_SERVERS:,} servers:")
            for met, text in targets(result):
                print(f"- [{'x' if met else ' '}] {text}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))


if __name__ == "__main__":
    main()
