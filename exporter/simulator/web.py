"""HTTP plumbing: requests, replies, fault bodies, and the request handler."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import math
import socket
import struct
import sys
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from exporter.simulator.records import iso

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator

# Fault root names per API and status; anything else gets the API's generic fault.
_SERVERS_FAULTS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "buildInProgress",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
_FAULT_NAMES = {
    "servers": _SERVERS_FAULTS,
    # First-generation Cloud Servers names its 403 fault differently.
    "servers_v1": {**_SERVERS_FAULTS, 403: "resizeNotAllowed"},
    "identity": {
        400: "badRequest",
        401: "unauthorized",
        403: "forbidden",
        404: "itemNotFound",
        413: "overLimit",
        429: "overLimit",
        503: "serviceUnavailable",
    },
}
_GENERIC_FAULT = {
    "servers": "computeFault",
    "servers_v1": "cloudServersFault",
    "identity": "identityFault",
}


_ENCODER = json.JSONEncoder(check_circular=False)


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    base: str
    path: str = ""
    query: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = parse_qsl(parts.query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        """The first value of a query parameter."""
        for k, v in self.query:
            if k == name:
                return v
        return None

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        return self.headers.get(name.lower())


@dataclass
class Reply:
    """What to send back. ``action`` "reset" drops the connection; "truncate" cuts the body;
    "trickle" sends it at ``rate`` bytes a second. ``date`` overrides the Date header."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/json"
    action: str = "normal"
    rate: float = 0.0
    date: float | None = None


def json_reply(status: int, data: object, headers: list[tuple[str, str]] | None = None) -> Reply:
    """A JSON reply."""
    return Reply(status, _ENCODER.encode(data).encode(), headers or [])


def text_reply(status: int, text: str, content_type: str = "text/plain; charset=UTF-8") -> Reply:
    """A plain-text reply."""
    return Reply(status, text.encode(), [], content_type)


def fault_reply(api: str, status: int, message: str | None = None, **extra: object) -> Reply:
    """An error in the shape the given API uses for that status."""
    if message is None:
        message = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    if api == "identity_v1":
        if status >= 500:
            return Reply(status, b"", [], None)
        return text_reply(status, message)
    if api in ("rackconnect", "rackconnect_v3", "control"):
        return text_reply(status, message)
    name = _FAULT_NAMES[api].get(status, _GENERIC_FAULT[api])
    return json_reply(status, {name: {"code": status, "message": message, **extra}})


def over_limit_reply(
    api: str,
    now: float,
    retry_at: float,
    *,
    status: int = 413,
    retry_after_format: str = "http-date",
    body_key: str = "retryAfter",
) -> Reply:
    """A Repose rate-limit answer: ``Retry-After`` plus an ``overLimit`` body."""
    if retry_after_format == "seconds":
        header = str(max(0, math.ceil(retry_at - now)))
    else:
        header = formatdate(math.ceil(retry_at), usegmt=True)
    if api in ("identity_v1", "rackconnect", "rackconnect_v3"):
        reply = text_reply(status, "Rate limit exceeded")
    else:
        reply = json_reply(
            status,
            {
                "overLimit": {
                    "code": status,
                    "message": "OverLimit Retry...",
                    "details": "Error Details...",
                    body_key: iso(math.ceil(retry_at)),
                }
            },
        )
    reply.headers.append(("Retry-After", header))
    return reply


class SimHTTPServer(ThreadingHTTPServer):
    """The listening server; carries the simulator for the handlers."""

    daemon_threads = True
    allow_reuse_address = True
    sim: Simulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a timeout, a reset) is normal here: say nothing."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into ``Simulator.handle`` calls and writes the replies."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a kept-alive connection then
    # waits for the client's delayed ACK (40 ms) on every reply.
    disable_nagle_algorithm = True
    server_version = "Jetty(9.2.z-SNAPSHOT)"
    sys_version = ""
    server: SimHTTPServer

    def do_GET(self) -> None:
        """Serve GET."""
        self._serve()

    def do_POST(self) -> None:
        """Serve POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve PUT."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve DELETE."""
        self._serve()

    def do_HEAD(self) -> None:
        """Serve HEAD."""
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet; the simulator keeps its own request log."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host")
        sim = self.server.sim
        base = f"http://{host}" if host else sim.base_url
        req = Request(
            method=self.command,
            target=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base=base,
        )
        try:
            reply = sim.handle(req)
        except Exception as exc:  # answer 500 rather than drop the connection
            reply = text_reply(500, f"simulator error: {exc!r}")
        if reply.action == "reset":
            self._reset()
            return
        self._date = reply.date
        self.send_response(reply.status)
        if reply.content_type and (reply.body or reply.status not in (204, 304)):
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        body = b"" if self.command == "HEAD" else reply.body
        if reply.action == "truncate":
            self.send_header("Content-Length", str(len(body) + 512))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if reply.status != 304:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if body and reply.action == "trickle":
            self._trickle(body, reply.rate)
        elif body:
            self.wfile.write(body)

    _date: float | None = None

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header: the reply's own date when it has one (a skewed clock)."""
        return super().date_time_string(self._date if timestamp is None else timestamp)

    def _trickle(self, body: bytes, rate: float) -> None:
        # Whole bytes at ``rate`` a second, until sent or the client hangs up.
        step = max(1, int(rate / 10))
        self.wfile.flush()
        for i in range(0, len(body), step):
            self.wfile.write(body[i : i + step])
            self.wfile.flush()
            time.sleep(step / rate)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        # The handler flushes wfile after every request: give it somewhere harmless to go.
        self.wfile = io.BytesIO()


@functools.cache
def gzip_bomb() -> bytes:
    """A listing that is small on the wire and 48 MiB once inflated."""
    return gzip.compress(b'{"servers": [' + b" " * (48 << 20) + b"]}", compresslevel=9)


def request_id() -> str:
    """A Nova request id."""
    return f"req-{uuid.uuid4()}"
