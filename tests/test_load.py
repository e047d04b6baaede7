"""Load: many scrapers at once while polls run; idle and slow-drip clients; bounded threads."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from exporter.store import Store
from exporter.web import server as web
from exporter.web.server import ExporterHTTPServer
from tests.helpers import CLEAN_ENV, STOP_POLL, free_port, wait_for

pytestmark = pytest.mark.slow

SCRAPERS = 50
SECONDS = 30.0


def proc_status(pid: int) -> dict[str, int]:
    """Threads and memory (kB) of a process, from /proc."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Threads", "VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return fields


def drip(port: int, stop: threading.Event, closed: list[float]) -> None:
    """A client that sends its request one byte every 0.5 s and never finishes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: y\r\n" * 1000:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(0.5)
        except OSError:
            closed.append(time.monotonic() - started)


def test_fifty_scrapers_for_thirty_seconds() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--simulator.listen-address",
            "127.0.0.1:0",
            "--poll.interval",
            "1s",
            "--simulator.step-interval",
            "200ms",
            "--log.level",
            "warn",
        ],
        env=CLEAN_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    samples: list[dict[str, int]] = []
    closed: list[float] = []

    def scraper() -> None:
        session = requests.Session()
        accept = {"Accept": "application/openmetrics-text", "Accept-Encoding": "gzip"}
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = session.get(url, headers=accept, timeout=10)
                ok = response.status_code == 200 and response.content.endswith(b"# EOF\n")
                outcome = None if ok else f"status {response.status_code}"
            except requests.RequestException as exc:
                outcome = repr(exc)
            with lock:
                if outcome:
                    failures.append(outcome)
                else:
                    latencies.append(time.monotonic() - started)

    def sampler() -> None:
        while not stop.is_set():
            samples.append(proc_status(proc.pid))
            time.sleep(0.2)

    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready")
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        threads = [threading.Thread(target=scraper) for _ in range(SCRAPERS)]
        threads += [threading.Thread(target=drip, args=(port, stop, closed)) for _ in range(10)]
        threads.append(threading.Thread(target=sampler))
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join(timeout=15)
        elapsed = time.monotonic() - started
        final = proc_status(proc.pid)
        metrics = requests.get(url, timeout=5).text
        for sock in idle:
            sock.close()
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=10)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    max_threads = max(s["Threads"] for s in samples)
    figures = {
        "scrapes": len(latencies),
        "scrapes_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "max_threads": max_threads,
        "max_rss_mib": round(final["VmHWM"] / 1024, 1),
        "drips_closed_after_s": round(max(closed), 1) if closed else None,
        "exposition_bytes": len(metrics),
    }
    print(f"\nload figures: {figures}")
    assert failures == []
    assert len(latencies) > SCRAPERS * 10
    assert p99 < 5.0
    # connection threads are capped; the rest is the pollers, the simulator and the main thread
    assert max_threads <= web.MAX_CONNECTIONS + 40
    assert final["VmHWM"] < 512 * 1024
    assert len(closed) == 10  # every slow-drip client was cut off
    # a drip is cut off at its request deadline; one more deadline of slack for a busy machine
    assert max(closed) < 2 * web.REQUEST_TIMEOUT + 5
    assert "rackconnect_up" in metrics


@pytest.fixture
def small_server(monkeypatch):
    monkeypatch.setattr(web, "REQUEST_TIMEOUT", 1.0)
    httpd = ExporterHTTPServer(("127.0.0.1", 0), Store(60), max_connections=2)
    httpd.start(STOP_POLL)
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_idle_connections_time_out_and_free_their_slot(small_server) -> None:
    host, port = small_server.server_address[:2]
    idle = [socket.create_connection((host, port)) for _ in range(2)]  # every slot taken
    started = time.monotonic()
    response = requests.get(small_server.url + "/-/healthy", timeout=10)
    waited = time.monotonic() - started
    assert response.status_code == 200
    assert 0.5 < waited < 5  # served once an idle connection timed out
    for sock in idle:
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the server
        sock.close()


def test_a_slow_drip_request_is_cut_off(small_server) -> None:
    port = small_server.server_address[1]
    closed: list[float] = []
    stop = threading.Event()
    dripper = threading.Thread(target=drip, args=(port, stop, closed))
    dripper.start()
    dripper.join(timeout=10)
    stop.set()
    assert closed
    assert closed[0] < 5
    assert requests.get(small_server.url + "/-/healthy", timeout=5).status_code == 200


def test_keep_alive_serves_many_requests_on_one_connection(small_server) -> None:
    session = requests.Session()
    for _ in range(20):
        assert session.get(small_server.url + "/-/healthy", timeout=5).status_code == 200
