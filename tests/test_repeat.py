"""Repeated GETs: prepared once, sent the same; bodies told apart by their digest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter.rackspace.client import ApiClient
from exporter.rackspace.repeat import body_digest


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, dict[str, str]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = b'{"ok": true}'
        self.send_response(200)
        if self.path.startswith("/cookie"):
            self.send_header("Set-Cookie", "sticky=1; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def origin() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _get(client: ApiClient, url: str, token: str, **params: str) -> bytes:
    headers = {"X-Auth-Token": token}
    return client.fetch("GET", url, api="a", region="R", headers=headers, params=params).join()


def test_a_repeated_get_is_sent_as_the_first_was(origin: str) -> None:
    client = ApiClient(5.0)
    for _ in range(3):
        assert _get(client, origin + "/v3/x", "t1", marker="m 1") == b'{"ok": true}'
    _get(client, origin + "/v3/x", "t2", marker="m 1")
    paths = [path for path, _ in _Recorder.seen]
    assert paths == ["/v3/x?marker=m+1"] * 4
    first, *again = [headers for _, headers in _Recorder.seen]
    assert first["x-auth-token"] == "t1"
    assert "user-agent" in first
    assert again[:2] == [first, first]
    assert again[2]["x-auth-token"] == "t2"  # another token: prepared anew
    client.close()


def test_cookies_the_session_holds_are_sent(origin: str) -> None:
    client = ApiClient(5.0)
    _get(client, origin + "/v3/x", "t")  # prepared while the session had no cookies
    _get(client, origin + "/cookie", "t")
    _get(client, origin + "/v3/x", "t")
    assert "cookie" not in _Recorder.seen[0][1]
    assert _Recorder.seen[2][1]["cookie"] == "sticky=1"
    client.close()


def test_a_body_is_known_by_its_digest() -> None:
    body = [b"a" * 1000, b"b" * 10]
    assert body_digest(body) == body_digest([b"a" * 1000, b"b" * 10])
    assert body_digest(body) != body_digest([b"a" * 1000, b"c" * 10])
    assert body_digest(body) != body_digest([b"a" * 1000, b"b" * 11])
