"""A replaying upstream: the simulator's answers recorded once, then served from memory.

Usage: ``python -m bench.replay UPSTREAM_ORIGIN`` (``http://127.0.0.1:PORT``); prints its
own origin. The first answer to each request is fetched from the simulator, its origin
rewritten to this one (so the catalog points here), and kept; later identical requests
are answered from memory at almost no CPU cost, so a poll measured against it shows the
exporter's own cost instead of the simulator's JSON encoding on the same cores.
``POST /_replay/forget`` drops what was recorded (after the fleet changed).
"""

from __future__ import annotations

import http.client
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Recorded = tuple[int, list[tuple[str, str]], bytes]
KEEP_HEADERS = ("Content-Type", "Retry-After")


class Replay(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.upstream = upstream
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"
        self.recorded: dict[tuple[str, str, bytes], Recorded] = {}
        self.lock = threading.Lock()

    def fetch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Recorded:
        where = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=120)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        data = data.replace(self.upstream.encode(), self.origin.encode())
        kept = [(k, v) for k in KEEP_HEADERS if (v := response.getheader(k)) is not None]
        return response.status, kept, data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Replay

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_replay/forget":
            with self.server.lock:
                self.server.recorded.clear()
            self._send((204, [], b""))
            return
        key = (method, self.path, body)
        recorded = self.server.recorded.get(key)
        if recorded is None:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            recorded = self.server.fetch(method, self.path, headers, body)
            if recorded[0] < 400:
                with self.server.lock:
                    self.server.recorded[key] = recorded
        self._send(recorded)

    def _send(self, recorded: Recorded) -> None:
        status, headers, data = recorded
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")


def main() -> None:
    server = Replay(sys.argv[1])
    print(server.origin, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
