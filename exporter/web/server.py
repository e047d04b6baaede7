"""HTTP: the telemetry path, the landing page and the health endpoints.

Every answer is read from the current snapshot; nothing here calls upstream.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

from exporter import __version__
from exporter.exposition.families import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from exporter.exposition.gzipparts import Payload
from exporter.exposition.process import ProcessFamilies
from exporter.logs import format_exception, logger
from exporter.store import Store
from exporter.web.landing import render_landing
from exporter.web.security import WebSecurity
from exporter.web.sockets import DeadlineReader, HeadersTooLargeError, handshake, send_parts

REQUEST_TIMEOUT = 10.0  # seconds from the end of one answer to a complete next request
WRITE_TIMEOUT = 10.0  # seconds a client may take to receive a whole answer
# Connections served at once (a thread each); as many more wait in the listen queue. Well
# above what slow clients usually hold, so a scraper rarely waits for a slot at all.
MAX_CONNECTIONS = 512
PLAIN = {"Content-Type": "text/plain; charset=utf-8"}
RELOAD_PATH = "/-/reload"


def wants_openmetrics(accept: str) -> bool:
    """True when the Accept header prefers OpenMetrics over the text format."""
    best_q, best = -1.0, False
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == "application/openmetrics-text" and q > best_q:
            best_q, best = q, True
        elif media in ("text/plain", "*/*") and q > best_q:
            best_q, best = q, False
    return best


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client takes gzip (and did not refuse it with q=0)."""
    for item in accept_encoding.split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        if coding.lower() == "gzip":
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00") for p in params)
    return False


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    server_version = f"rackconnect-exporter/{__version__}"
    sys_version = ""
    timeout = REQUEST_TIMEOUT
    protocol_version = "HTTP/1.1"
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            # Bodies go out in several writes: do not let the last one wait for an ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            # The handshake runs here, in the connection's thread, within the deadline.
            handshake(self.connection, time.monotonic() + REQUEST_TIMEOUT)
        self.rfile.close()  # the plain reader; the socket stays open
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, self))

    received = 0  # bytes of the current request read so far
    write_deadline = 0.0

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + REQUEST_TIMEOUT
        self.received = 0
        try:
            super().handle_one_request()
        except HeadersTooLargeError:
            self.requestline = ""
            if not hasattr(self, "command"):
                self.command = ""
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib answers a request line it cannot parse as HTTP/0.9 would: no status
        # line, no headers. Answer as HTTP/1.1, with the configured headers, and close.
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        super().send_error(code, message, explain)

    def end_headers(self) -> None:
        # Every answer, the stdlib's error pages included, carries the configured headers.
        for key, value in self.server.extra_headers.items():
            self.send_header(key, value)
        # One deadline for the whole answer, headers and body (sendall counts it in total).
        self.write_deadline = time.monotonic() + WRITE_TIMEOUT
        self.connection.settimeout(WRITE_TIMEOUT)
        super().end_headers()

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _admitted(self, send_body: bool) -> bool:
        """Whether the request may go on; answers 401 when it may not."""
        if self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # an unread body must not pass for the next request
        if self.server.security.authorized(self.headers.get("Authorization")):
            return True
        # As exporter-toolkit: with users configured, every path needs them.
        headers = {**PLAIN, "WWW-Authenticate": "Basic"}
        self._send(HTTPStatus.UNAUTHORIZED, b"Unauthorized\n", headers, send_body)
        return False

    def _answer(self, send_body: bool) -> None:
        if not self._admitted(send_body):
            return
        path = urlsplit(self.path).path
        server = self.server
        snapshot = server.store.current
        if path == server.telemetry_path:
            openmetrics = wants_openmetrics(self.headers.get("Accept", ""))
            compressed = accepts_gzip(self.headers.get("Accept-Encoding", ""))
            payload = snapshot.parts(openmetrics, compressed, server.process.part(openmetrics))
            headers = {
                "Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE,
                "Vary": "Accept, Accept-Encoding",
            }
            if compressed:
                headers["Content-Encoding"] = "gzip"
            self._send(HTTPStatus.OK, payload, headers, send_body)
        elif path == "/":
            self._send(
                HTTPStatus.OK,
                server.landing(snapshot),
                {"Content-Type": "text/html; charset=utf-8"},
                send_body,
            )
        elif path == "/-/healthy":
            self._send(HTTPStatus.OK, b"OK\n", PLAIN, send_body)
        elif path == "/-/ready":
            if snapshot.ready:
                self._send(HTTPStatus.OK, b"Ready\n", PLAIN, send_body)
            else:
                waiting = ", ".join(a.name for a in snapshot.accounts if not a.polled)
                text = f"Not ready: waiting for the first poll of {waiting}\n".encode()
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, text, PLAIN, send_body)
        elif self._reloads(path):
            self._not_allowed(send_body)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"Not found\n", PLAIN, send_body)

    def _reloads(self, path: str) -> bool:
        """Whether ``path`` is the reload endpoint, which only ``POST`` reaches."""
        return path == RELOAD_PATH and self.server.reload is not None

    def do_POST(self) -> None:
        reload = self.server.reload
        if reload is None or not self._reloads(urlsplit(self.path).path):
            self._not_allowed()
        elif self._admitted(send_body=True):
            problems = reload()
            if problems:
                text = "Reload refused, the running configuration stays:\n" + "\n".join(problems)
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"{text}\n".encode(), PLAIN, True)
            else:
                self._send(HTTPStatus.OK, b"Reloaded\n", PLAIN, True)

    def _not_allowed(self, send_body: bool = True) -> None:
        allow = "POST" if self._reloads(urlsplit(self.path).path) else "GET, HEAD"
        headers = {**PLAIN, "Allow": allow}
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"Method not allowed\n", headers, send_body)
        self.close_connection = True  # a request body, if any, was not read

    do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815 - stdlib names

    def _send(
        self,
        status: HTTPStatus,
        body: bytes | Payload,
        headers: dict[str, str],
        send_body: bool,
    ) -> None:
        payload = Payload(len(body), (body,)) if isinstance(body, bytes) else body
        self.send_response(status)
        extra = self.server.extra_headers
        for key, value in headers.items():
            if key not in extra:  # end_headers sends the configured ones
                self.send_header(key, value)
        self.send_header("Content-Length", str(payload.length))
        self._hold_headers = send_body
        self.end_headers()
        if send_body:
            # The headers go out with the body, in the same system call.
            head, self._headers_buffer = b"".join(self._headers_buffer), []
            chunks = chain((head,), payload.chunks)
            send_parts(self.connection, chunks, self.wfile.write, self.write_deadline)

    _hold_headers = False  # True while the headers wait for the body
    _headers_buffer: list[bytes]  # the stdlib's, unannotated

    def flush_headers(self) -> None:
        if not self._hold_headers:
            super().flush_headers()
        self._hold_headers = False

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(
            "http request", extra={"client": self.client_address[0], "line": format % args}
        )


class ExporterHTTPServer(ThreadingHTTPServer):
    """Serves the exporter's endpoints from a Store, one thread per connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        telemetry_path: str = "/metrics",
        security: WebSecurity | None = None,
        max_connections: int = MAX_CONNECTIONS,
        *,
        process: ProcessFamilies | None = None,
        reload: Callable[[], list[str]] | None = None,
    ):
        self.address_family = _family(address[0])
        self.request_queue_size = max_connections  # the listen backlog
        self._slots = threading.BoundedSemaphore(max_connections)
        self._closing = threading.Event()
        super().__init__(address, _Handler)
        self.store = store
        self.telemetry_path = telemetry_path
        self.process = process or ProcessFamilies()
        self.security = security or WebSecurity(None)
        # POST /-/reload: loads the configuration again; returns why it was refused.
        self.reload = reload
        self._landing_lock = threading.Lock()
        self._landing: tuple[object, bytes] | None = None

    @property
    def extra_headers(self) -> dict[str, str]:
        """Headers added to every answer (``http_server_config.headers``)."""
        return self.security.headers

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread once one of the ``max_connections`` slots frees."""
        while not self._slots.acquire(timeout=0.5):
            if self._closing.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        """Stop serving (connections waiting for a slot are closed)."""
        self._closing.set()
        super().shutdown()

    def get_request(self) -> tuple[socket.socket, tuple]:
        """Accept a connection; wrap it in TLS when configured (the handshake comes later)."""
        sock, address = super().get_request()
        context = self.security.context
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: object, client_address: tuple) -> None:
        """Log a failed connection in one line (a client that left early is routine)."""
        exc = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(exc, OSError) else logging.ERROR
        logger.log(
            level,
            "http connection failed",
            extra={"client": client_address[0], "err": format_exception(exc) if exc else ""},
        )

    def landing(self, snapshot) -> bytes:
        """The landing page, rendered once per snapshot."""
        with self._landing_lock:
            if self._landing is None or self._landing[0] is not snapshot:
                self._landing = (snapshot, render_landing(snapshot, self.telemetry_path))
            return self._landing[1]

    @property
    def url(self) -> str:
        """The base URL, for printing and for tests."""
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        if host in ("", "0.0.0.0", "::"):
            host = "localhost"
        elif ":" in str(host):
            host = f"[{host}]"
        return f"{'https' if self.security.tls else 'http'}://{host}:{port}"

    def serve_forever(self, poll_interval: float = 0.1) -> None:
        """Serve until ``shutdown()``, which returns within ``poll_interval``."""
        super().serve_forever(poll_interval)

    def start(self, poll_interval: float = 0.1) -> threading.Thread:
        """Serve in a daemon thread; ``shutdown()`` returns within ``poll_interval``."""
        thread = threading.Thread(
            target=self.serve_forever, args=(poll_interval,), name="http", daemon=True
        )
        thread.start()
        return thread


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
