"""HTTP endpoints: formats, compression, health, the landing page, slow clients."""

from __future__ import annotations

import gzip
import re
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from exporter.web import sockets
from exporter.web.server import accepts_gzip, wants_openmetrics
from tests.conftest import account_config
from tests.expo_helpers import samples

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def polled(sim, make_exporter):
    exporter = make_exporter(*(account_config(sim, a.name) for a in sim.accounts))
    exporter.poll()
    return exporter


def test_text_format_by_default(polled) -> None:
    response = requests.get(
        polled.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=5
    )
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in response.headers
    assert samples(response.content)
    # the process families, then the snapshot's body, inflated as it was sent
    body = polled.store.current.body()
    assert response.content.endswith(body)
    assert response.content.startswith(b"# HELP process_")
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_openmetrics_and_gzip_as_prometheus_asks(polled) -> None:
    response = requests.get(
        polled.url + "/metrics",
        headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
        timeout=5,
        stream=True,
    )
    assert response.headers["Content-Type"].startswith(
        "application/openmetrics-text; version=1.0.0"
    )
    assert response.headers["Content-Encoding"] == "gzip"
    raw = response.raw.read(decode_content=False)
    body = gzip.decompress(raw)
    assert body.endswith(b"# EOF\n")
    served = samples(body, openmetrics=True)
    ours = {key: v for key, v in served.items() if not key[0].startswith("process_")}
    assert ours == samples(polled.store.current.body(True), True)  # plus the process families
    assert ("process_resident_memory_bytes", frozenset()) in served


def test_the_same_bytes_until_the_next_poll(polled) -> None:
    first = polled.get("/metrics").content
    assert polled.get("/metrics").content == first
    assert polled.store.current.body(False, True) is polled.store.current.body(False, True)


def test_head_and_unknown_paths_and_methods(polled) -> None:
    head = requests.head(polled.url + "/metrics", timeout=5)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) > 0
    assert head.content == b""
    assert polled.get("/nope").status_code == 404
    post = requests.post(polled.url + "/metrics", timeout=5)
    assert post.status_code == 405
    assert post.headers["Allow"] == "GET, HEAD"


def test_health_endpoints(polled) -> None:
    assert polled.get("/-/healthy").text == "OK\n"
    assert polled.get("/-/ready").text == "Ready\n"


def test_landing_page_shows_the_fleet(sim, polled) -> None:
    page = polled.get("/")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.text
    assert "RackConnect Exporter" in html
    assert "href='./metrics'" in html
    live = [s for s in sim.servers() if s["generation"] == "next" and not s["deleted"]]
    total = re.search(r"<tr><th colspan='2'>Total</th><th class='n'>(\d+)</th>", html)
    assert total is not None
    assert int(total.group(1)) == len(live)
    not_ready = re.search(r"<h2>Not ready \((\d+)\)</h2>", html)
    assert not_ready is not None
    ready_values = [v for (n, _), v in polled.scrape().items() if n == "rackconnect_server_ready"]
    assert int(not_ready.group(1)) == ready_values.count(0)
    failed = next(s for s in live if s["metadata"].get("rackconnect_automation_status") == "FAILED")
    assert f"<code>{failed['id']}</code>" in html


def test_landing_page_escapes_names(sim, make_exporter) -> None:
    sim.add_server(
        "initech",
        "HKG",
        name="<script>alert(1)</script>",
        metadata={"rax_service_level_automation": "Pending"},
    )
    exporter = make_exporter(account_config(sim, "initech", managed=True))
    exporter.poll()
    html = exporter.get("/").text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_slow_client_does_not_block_others(polled) -> None:
    host, port = polled.httpd.server_address[:2]
    with socket.create_connection((host, port)) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        started = time.monotonic()
        for _ in range(5):
            assert polled.get("/-/healthy").status_code == 200
        assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", False),
        ("text/plain", False),
        ("application/openmetrics-text", True),
        (PROMETHEUS_ACCEPT, True),
        ("text/plain;q=0.9,application/openmetrics-text;q=0.5", False),
        ("*/*", False),
    ],
)
def test_content_negotiation(accept: str, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("gzip", True),
        ("deflate, gzip;q=1.0", True),
        ("gzip;q=0", False),
        ("br", False),
    ],
)
def test_gzip_negotiation(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_parts_made_on_the_way_are_taken_only_as_they_are_sent(monkeypatch) -> None:
    """A plain body is inflated part by part: never more than a batch ahead of the socket."""
    monkeypatch.setattr(sockets, "SEND_BATCH", 1000)
    sent = bytearray()

    class Socket:  # takes at most 300 bytes a call, as a full socket buffer does
        def sendmsg(self, views: list[memoryview]) -> int:
            taken = b"".join(views)[:300]
            sent.extend(taken)
            return len(taken)

        def settimeout(self, seconds: float) -> None:
            pass

    unsent: list[int] = []  # bytes made but not yet sent, each time a part is asked for
    parts = [bytes([65 + i]) * 400 for i in range(20)]

    def made() -> Iterator[bytes]:
        for i, part in enumerate(parts):
            unsent.append(i * 400 - len(sent))
            yield part

    sockets.send_parts(Socket(), made(), write=print)
    assert bytes(sent) == b"".join(parts)
    assert max(unsent) < 1000
    assert unsent[-1] < 400 * 19  # much was sent before the last part was made
