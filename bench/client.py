"""A minimal keep-alive HTTP/1.1 client, so that the client does not dominate the timings.

It sends a request, reads the headers, then reads the body with ``recv_into`` into a
reused buffer: no parsing, copying or decoding beyond what finding the end needs.
"""

from __future__ import annotations

import socket
import time

_CHUNK = 1 << 20


class Client:
    """One connection to ``host:port``; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._buf = bytearray(4 << 20)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=120)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock

    def close(self) -> None:
        """Close the connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, int, float]:
        """GET ``path``; returns (status, body bytes, seconds from send to last byte)."""
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        data = request.encode()
        sock = self._sock or self._connect()
        started = time.perf_counter()
        try:
            sock.sendall(data)
            status, length, close = self._read(sock)
        except (ConnectionError, OSError):
            # The server closed an idle keep-alive connection: once more, on a new one.
            self.close()
            sock = self._connect()
            started = time.perf_counter()
            sock.sendall(data)
            status, length, close = self._read(sock)
        elapsed = time.perf_counter() - started
        if close:
            self.close()
        return status, length, elapsed

    def _read(self, sock: socket.socket) -> tuple[int, int, bool]:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the headers")
            head += chunk
        header, _, rest = head.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        close = fields.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0")
        if "content-length" in fields:
            length = int(fields["content-length"])
            if len(self._buf) < length:
                self._buf = bytearray(length)
            view = memoryview(self._buf)
            got = len(rest)
            while got < length:
                n = sock.recv_into(view[got:length], min(length - got, _CHUNK * 8))
                if n == 0:
                    raise ConnectionError("closed in the body")
                got += n
            return status, length, close
        length = len(rest)  # no length: the body ends when the server closes
        while chunk := sock.recv(_CHUNK):
            length += len(chunk)
        return status, length, True
