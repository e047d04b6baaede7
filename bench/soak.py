"""A bounded soak: the exporter against the simulator under rotating attacks, RSS sampled.

Usage: ``python -m bench.soak --minutes 3``. The exporter runs as its own process (1 s
polls, 2 s timeout) against the demo fleet; every 20 s the next attack starts: gzip bombs
from every region, 64 requests with 6.4 MB of headers, trickling, skewed and query-less
answers with resets and delays, 80 slow readers, then a quiet spell. Eight scrapers run
throughout. It prints the RSS at start, its peak and its value after each quiet spell
per 100 s cycle, the plateau (median over the last whole cycle), the slope of the
per-cycle peaks (MiB per minute), and the scrapers' worst latency and failures per phase.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from exporter.simulator import Fault, Scenario, Simulator

PHASE = 20.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def big_headers(address: tuple[str, int], stop: threading.Event) -> None:
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 65000) for i in range(99))
    while not stop.is_set():
        try:
            with socket.create_connection(address, timeout=5) as sock:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
                sock.recv(1024)
        except OSError:
            pass


def slow_reader(address: tuple[str, int], stop: threading.Event) -> None:
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect(address)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        while not stop.wait(2.0) and sock.recv(256):
            pass
        sock.close()
    except OSError:
        pass


def attack(sim: Simulator, phase: int, address: tuple[str, int]) -> threading.Event:
    """Start one phase's attack; set the returned event to end it."""
    stop = threading.Event()
    sim.clear_faults()
    kind = phase % 5
    if kind == 0:
        sim.add_fault(Fault("gzip_bomb", api="servers"))
    elif kind == 1:
        for _ in range(64):
            threading.Thread(target=big_headers, args=(address, stop), daemon=True).start()
    elif kind == 2:
        sim.add_fault(Fault("trickle", api="servers", region="ORD", rate=50.0))
        sim.add_fault(Fault("skew_date", api="servers", region="DFW", seconds=86400))
        sim.add_fault(Fault("next_without_since", api="servers", region="IAD"))
        sim.add_fault(Fault("reset", api="servers", region="LON"))
        sim.add_fault(Fault("delay", api="servers", region="SYD", seconds=1.5))
    elif kind == 3:
        for _ in range(80):
            threading.Thread(target=slow_reader, args=(address, stop), daemon=True).start()
    return stop


PHASES = ("gzip_bombs", "big_headers", "trickle_skew_nextlink", "slow_readers", "quiet")


def scraper(
    url: str, stop: threading.Event, phase: list[int], worst: dict[str, float], failures: list
) -> None:
    while not stop.is_set():
        started = time.monotonic()
        name = PHASES[phase[0] % 5]
        try:
            requests.get(url, timeout=30).raise_for_status()
            worst[name] = max(worst.get(name, 0.0), time.monotonic() - started)
        except requests.RequestException as exc:
            failures.append((name, type(exc).__name__))
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    with Simulator(Scenario.demo(seed=1)) as sim, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yml"
        lines = ["accounts:"]
        for account in sim.accounts:
            lines += [
                f"  - name: {account.name}",
                f"    username: {account.username}",
                f"    api_key: {account.api_key}",
                f"    identity_url: {sim.identity_url}",
            ]
        config.write_text("\n".join(lines) + "\n")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        flags = ["--poll.interval", "1s", "--poll.timeout", "2s", "--log.level", "error"]
        flags += ["--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"]
        proc = subprocess.Popen([sys.executable, "-m", "exporter", *flags])
        url = f"http://127.0.0.1:{port}/metrics"
        address = ("127.0.0.1", port)
        done = threading.Event()
        current = [0]
        worst: dict[str, float] = {}
        failures: list[tuple[str, str]] = []
        try:
            for _ in range(100):
                try:
                    if requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            scrapers = [
                threading.Thread(target=scraper, args=(url, done, current, worst, failures))
                for _ in range(8)
            ]
            for thread in scrapers:
                thread.start()
            samples: list[tuple[float, float]] = []
            began = time.monotonic()
            end = began + args.minutes * 60
            phase, stop = 0, attack(sim, 0, address)
            while (now := time.monotonic()) < end:
                if now - began > (phase + 1) * PHASE:
                    stop.set()
                    phase += 1
                    current[0] = phase
                    stop = attack(sim, phase, address)
                samples.append((now - began, rss_mib(proc.pid)))
                time.sleep(1.0)
            stop.set()
            done.set()
            for thread in scrapers:
                thread.join()
        finally:
            sim.clear_faults()
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        cycle = PHASE * len(PHASES)
        cycles: dict[int, list[float]] = {}
        for at, rss in samples:
            cycles.setdefault(int(at // cycle), []).append(rss)
        whole = [cycles[i] for i in sorted(cycles) if len(cycles[i]) >= cycle * 0.5]
        peaks = [max(c) for c in whole]
        slope = (peaks[-1] - peaks[0]) / ((len(peaks) - 1) * cycle / 60) if len(peaks) > 1 else 0
        print(
            json.dumps(
                {
                    "minutes": args.minutes,
                    "rss_start_mib": round(samples[0][1], 1),
                    "rss_max_mib": round(max(v for _, v in samples), 1),
                    "rss_peak_per_cycle_mib": [round(p, 1) for p in peaks],
                    "rss_after_quiet_per_cycle_mib": [round(c[-1], 1) for c in whole],
                    "rss_plateau_mib": round(statistics.median(whole[-1] if whole else [0]), 1),
                    "rss_peak_slope_mib_per_min": round(slope, 2),
                    "scrape_worst_s_per_phase": {k: round(v, 3) for k, v in worst.items()},
                    "scrape_failures": len(failures),
                    "scrape_failures_by_phase": sorted({p for p, _ in failures}),
                }
            )
        )


if __name__ == "__main__":
    main()
