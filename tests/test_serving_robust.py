"""Serving under slow and odd clients, stopping on time, reloads that are refused whole."""

from __future__ import annotations

import base64
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import bcrypt
import pytest
import requests

from exporter import yamlcheck
from exporter.config import ConfigError, load, load_file
from exporter.polling.supervisor import reload_config
from exporter.simulator import Fault
from exporter.store import Store
from exporter.web import basicauth
from exporter.web import server as web
from exporter.web.basicauth import BasicAuth
from exporter.web.security import WebSecurity
from exporter.web.server import ExporterHTTPServer
from tests.conftest import account_config
from tests.expo_helpers import value
from tests.helpers import CLEAN_ENV, STOP_POLL, free_port, wait_for, wait_until


def config_text(sim, name: str, identity_url: bool = True) -> str:
    account = next(a for a in sim.accounts if a.name == name)
    text = (
        f"accounts:\n  - name: {name}\n    username: {account.username}\n"
        f"    api_key: {account.api_key}\n    regions: [ORD]\n"
    )
    return text + (f"    identity_url: {sim.identity_url}\n" if identity_url else "")


def exchange(url: str, raw: bytes) -> bytes:
    """Send raw bytes, read until the server closes (or 5 s pass)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


@pytest.fixture
def served(tmp_path: Path):
    path = tmp_path / "web.yml"
    path.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    httpd = ExporterHTTPServer(("127.0.0.1", 0), Store(60), security=WebSecurity(str(path)))
    httpd.start(STOP_POLL)
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_error_pages_carry_the_configured_headers(served) -> None:
    bad = exchange(served.url, b"GET / HTTP/1.1 extra\r\n\r\n")  # 400
    unsupported = exchange(served.url, b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")  # 501
    assert bad.startswith(b"HTTP/1.1 400")
    assert unsupported.startswith(b"HTTP/1.1 501")
    for answer in (bad, unsupported):
        assert b"X-Frame-Options: deny" in answer


def test_a_get_body_is_not_taken_for_the_next_request(served) -> None:
    smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = (
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: "
        + str(len(smuggled)).encode()
        + b"\r\n\r\n"
        + smuggled
    )
    answer = exchange(served.url, raw)
    assert answer.count(b"HTTP/1.1 ") == 1
    assert answer.startswith(b"HTTP/1.1 200")


def test_request_headers_are_capped_in_total(served) -> None:
    headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(60))
    answer = exchange(served.url, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")
    assert b"X-Frame-Options: deny" in answer
    ok = exchange(served.url, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")


def test_the_listen_backlog_fits_the_connection_limit(served) -> None:
    assert served.request_queue_size == web.MAX_CONNECTIONS


@pytest.mark.slow
def test_a_slow_reader_is_cut_off_at_the_write_deadline(sim, make_exporter, monkeypatch) -> None:
    monkeypatch.setattr(web, "WRITE_TIMEOUT", 1.0)
    exporter = make_exporter(*(account_config(sim, a.name) for a in sim.accounts))
    exporter.poll()
    size = len(exporter.get("/metrics").content)
    assert size > 64 * 1024
    # Small buffers on both sides, so the answer cannot all sit in the kernel.
    exporter.httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(exporter.httpd.server_address)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    received = 0
    sock.settimeout(5)
    try:
        while time.monotonic() - started < 8:
            chunk = sock.recv(2048)
            if not chunk:
                break
            received += len(chunk)
            time.sleep(0.1)  # about 20 KB/s: steady progress, but slower than the deadline
    except ConnectionError:
        pass
    took = time.monotonic() - started
    sock.close()
    assert received < size  # cut off before the end
    assert took < 3


def test_unknown_users_and_cheap_hashes_cost_the_highest_configured_cost(monkeypatch) -> None:
    costs: list[int] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        costs.append(int(hashed.split(b"$")[2]))
        return real(password, hashed)

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", counting)
    users = {
        "cheap": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)),
        "dear": bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=6)),
    }
    auth = BasicAuth()
    for user in ("cheap", "dear", "nobody"):
        costs.clear()
        header = "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()
        assert auth.check(users, header) is (user != "nobody")
        assert max(costs) == 6, user


def test_a_file_that_changes_while_read_is_refused(tmp_path: Path, monkeypatch, sim) -> None:
    path = tmp_path / "config.yml"
    path.write_text(config_text(sim, "acme"))
    real = Path.read_bytes

    def writer_interferes(self: Path) -> bytes:
        data = real(self)
        with self.open("a") as file:  # another process is still writing
            file.write("  - name: half\n")
        return data

    monkeypatch.setattr(yamlcheck.Path, "read_bytes", writer_interferes)
    with pytest.raises(ConfigError, match="changed while it was read; write a new file"):
        load_file(str(path))


def test_a_reload_that_drops_identity_url_is_refused_whole(sim, make_exporter, tmp_path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(config_text(sim, "acme"))
    exporter = make_exporter(*load(str(path)).accounts)
    exporter.poll()
    running = exporter.supervisor.configs
    # Cut mid-write: valid YAML, but identity_url is gone.
    path.write_text(config_text(sim, "acme", identity_url=False))
    problems = reload_config(lambda: load(str(path)), exporter.supervisor, exporter.store)
    assert any("identity_url missing" in p for p in problems), problems
    assert exporter.supervisor.configs == running
    assert value(exporter.scrape(), "rackconnect_config_last_reload_successful") == 0
    assert "identity_url missing" in exporter.log.getvalue()
    # Written out, the same move is accepted.
    text = config_text(sim, "acme", identity_url=False)
    path.write_text(text + "    identity_url: https://identity.api.rackspacecloud.com/v2.0/\n")
    assert reload_config(lambda: load(str(path)), exporter.supervisor, exporter.store) == []


@pytest.mark.slow
def test_sigterm_during_a_trickling_poll_exits_within_5_seconds(sim, tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(config_text(sim, "acme"))
    sim.add_fault(Fault("trickle", api="servers", region="ORD", rate=20.0))
    port = free_port()
    args = ["--config.file", str(path), "--web.listen-address", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", *args, "--poll.timeout", "60s"],
        env=CLEAN_ENV,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/-/healthy")
        wait_until(
            lambda: any("/servers/detail" in t for _m, t, *_ in sim.request_log),
            10,
            "the poll to start",
        )
        time.sleep(0.5)  # the body is trickling in
        started = time.monotonic()
        proc.terminate()
        code = proc.wait(timeout=30)
        took = time.monotonic() - started
        print(f"\nSIGTERM during a trickling poll: exit {code} after {took:.2f}s")
        assert code == 0
        assert took < 5
    finally:
        if proc.poll() is None:
            proc.kill()


def scraper_latencies(url: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            ok = requests.get(url, timeout=30).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.monotonic() - started if ok else 30.0)  # 30 s: failed
        time.sleep(0.2)
    return latencies


def hold(sockets: list[socket.socket], stop: threading.Event, slowloris: bool) -> None:
    """Slow readers take 256 bytes every 2 s; slowloris clients send a byte every 2 s."""
    while not stop.wait(2.0):
        for sock in sockets:
            try:
                if slowloris:
                    sock.send(b"X")
                else:
                    sock.recv(256)
            except OSError:
                pass


@pytest.mark.slow
@pytest.mark.parametrize(("clients", "slowloris"), [(80, False), (300, True)])
def test_a_scraper_is_served_within_10s_among_slow_clients(
    sim, make_exporter, clients: int, slowloris: bool
) -> None:
    exporter = make_exporter(*(account_config(sim, a.name) for a in sim.accounts))
    exporter.poll()
    # Small send buffers: answers cannot sit in the kernel, as with a fleet of thousands.
    exporter.httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    address = exporter.httpd.server_address
    stop = threading.Event()
    sockets = []
    for _ in range(clients):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.5)
        try:
            sock.connect(address)
            request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
            sock.sendall(request if slowloris else request + b"\r\n")
        except OSError:  # the listen queue is full: that client waits no further
            sock.close()
            continue
        sock.settimeout(0.01)
        sockets.append(sock)
    holder = threading.Thread(target=hold, args=(sockets, stop, slowloris), daemon=True)
    holder.start()
    try:
        latencies = sorted(scraper_latencies(exporter.url + "/metrics", 25))
    finally:
        stop.set()
        holder.join()
        for sock in sockets:
            sock.close()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"\nscraper among {len(sockets)} connected {'slowloris' if slowloris else 'slow readers'}: "
        f"{len(latencies)} scrapes, p50 {statistics.median(latencies):.3f}s, p99 {p99:.3f}s, "
        f"max {latencies[-1]:.3f}s"
    )
    assert latencies[-1] < 10  # every scrape, not most of them
