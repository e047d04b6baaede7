"""Bounded reads and writes on a client's socket: nobody holds a connection for ever.

A per-read timeout alone lets a client that sends or reads one byte at a time keep a
connection (and its thread); these helpers hold each request, handshake and answer to a
deadline for the whole of it.
"""

from __future__ import annotations

import io
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

MAX_HEADER_BYTES = 32 * 1024  # a request line and headers larger than this are refused (431)
SEND_SLICE = 16 * 1024  # bytes per write when sendmsg cannot be used (TLS)
SEND_BATCH = 1024 * 1024  # bytes gathered for one sendmsg loop: an inflated body waits no longer
_IOV_MAX = 1024


class Deadlined(Protocol):
    """What a DeadlineReader needs of its request handler."""

    deadline: float  # monotonic time by which the whole request must be read
    received: int  # bytes of request line and headers read so far


class HeadersTooLargeError(Exception):
    """The request line and headers exceed MAX_HEADER_BYTES."""


class DeadlineReader(io.RawIOBase):
    """Reads a socket, failing with TimeoutError once the handler's deadline has passed.

    A per-read timeout alone lets a client that sends one byte at a time hold a
    connection (and its thread) for ever; a deadline for the whole request does not.
    """

    def __init__(self, sock: socket.socket, handler: Deadlined) -> None:
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        handler = self._handler
        remaining = handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request deadline passed")
        if handler.received >= MAX_HEADER_BYTES:
            raise HeadersTooLargeError
        self._sock.settimeout(remaining)
        view = memoryview(buffer)[: MAX_HEADER_BYTES - handler.received]
        count = self._sock.recv_into(view)
        handler.received += count
        return count


def handshake(sock: ssl.SSLSocket, deadline: float) -> None:
    """A TLS handshake that must end by ``deadline``, however slowly the client sends."""
    sock.setblocking(False)
    wanted: tuple[list[ssl.SSLSocket], list[ssl.SSLSocket]]
    try:
        while True:
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                wanted = ([sock], [])
            except ssl.SSLWantWriteError:
                wanted = ([], [sock])
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not any(select.select(*wanted, [], remaining)[:2]):
                raise TimeoutError("TLS handshake deadline passed")
    finally:
        sock.setblocking(True)


def send_parts(
    sock: socket.socket,
    parts: Iterable[bytes | memoryview],
    write: Callable[[memoryview], object],
    deadline: float | None = None,
) -> None:
    """Send byte strings in order, several per system call where the socket allows it.

    The snapshot's parts are shared and never joined; ``sendmsg`` hands many of them to
    the kernel at once, which keeps a large body to a few calls (and GIL hand-overs).
    ``parts`` are taken as they are sent, about ``SEND_BATCH`` bytes ahead, so that parts
    made on the way (a plain body inflated part by part) are never all held at once.
    With a ``deadline`` (monotonic), the whole send must end by then (TimeoutError).
    """

    def wait_left() -> None:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("answer not received by the client in time")
            sock.settimeout(remaining)

    if isinstance(sock, ssl.SSLSocket) or not hasattr(sock, "sendmsg"):
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(view), SEND_SLICE):
                wait_left()
                write(view[start : start + SEND_SLICE])
        return

    def send_all(views: list[memoryview]) -> None:
        while views:
            wait_left()
            sent = sock.sendmsg(views[:_IOV_MAX])
            while views and sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            if sent:
                views[0] = views[0][sent:]

    views: list[memoryview] = []
    gathered = 0
    for part in parts:
        if part:
            views.append(memoryview(part))
            gathered += len(part)
            if gathered >= SEND_BATCH:
                send_all(views)
                gathered = 0
    send_all(views)
