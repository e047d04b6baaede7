"""Listen, handle signals, shut down: the life of every command that serves HTTP."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from exporter.app import Web, http_server
from exporter.errors import EXIT_FAILURE, EXIT_OK
from exporter.logs import logger
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer


def _existing(*names: str) -> tuple[int, ...]:
    """The signals of these names that this platform has (Windows has no SIGHUP)."""
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


STOP_GRACE = 4.5  # seconds from SIGTERM to exit, whatever is still running


def exit_by(seconds: float) -> threading.Timer:
    """Make sure the process ends within ``seconds``, even if a thread will not stop."""
    timer = threading.Timer(seconds, _exit_now)
    timer.daemon = True
    timer.start()
    return timer


def _exit_now() -> None:
    logger.warning("shutdown took too long, exiting now")
    for handler in logging.getLogger().handlers + logger.handlers:
        handler.flush()
    os._exit(EXIT_OK)


# What signal.signal() returns and takes back: a function, SIG_DFL/SIG_IGN, or None.
Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class Signals:
    """SIGTERM and SIGINT set ``stop``, SIGHUP sets ``reload``; ``wait`` logs and acts on them.

    Given an event to stop on, no handler is installed (tests and embedding). Used as a
    context manager, the previous handlers come back on exit.
    """

    def __init__(self, stop: threading.Event | None = None, *, reload: bool = True) -> None:
        self.stop = stop or threading.Event()
        self.reload = threading.Event()
        self.received: list[int] = []
        self._reload_signals = _existing("SIGHUP") if reload else ()
        wanted = _existing("SIGTERM", "SIGINT") + self._reload_signals
        self._wanted = () if stop is not None else wanted
        self._previous: dict[int, Handler] = {}

    def __enter__(self) -> Signals:
        for signum in self._wanted:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # Only flags here: logging from a signal handler can deadlock on its lock.
        self.received.append(signum)
        (self.reload if signum in self._reload_signals else self.stop).set()

    def log(self) -> None:
        """Log the signals received since the last call."""
        while self.received:
            name = signal.Signals(self.received.pop(0)).name
            logger.info("signal received", extra={"signal": name})

    def wait(self, on_reload: Callable[[], object] | None = None) -> None:
        """Block until ``stop``; call ``on_reload`` after each SIGHUP."""
        while not self.stop.wait(0.2):
            self.log()
            if self.reload.is_set():
                self.reload.clear()
                if on_reload is not None:
                    on_reload()
        self.log()


def run_server(
    web: Web,
    store: Store,
    start: Callable[[ExporterHTTPServer, threading.Event], Callable[[], None]],
    *,
    reload: Callable[[], list[str]] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve ``store`` until a signal (or ``stop``); EXIT_FAILURE if the address is taken.

    Once the server listens, ``start(httpd, stop)`` starts the command's own work and
    returns how to stop it; after SIGTERM the process exits within STOP_GRACE seconds,
    polls in flight cut off, not waited for. SIGHUP re-reads the web configuration, then
    calls ``reload``, which returns why it refused the new configuration (nothing when it
    applied it); with ``reload``, ``POST /-/reload`` does the same.
    """
    lock = threading.Lock()  # SIGHUP and POST /-/reload: one reload at a time

    def on_reload() -> list[str]:
        with lock:
            web.security.maybe_reload(force=True)
            return reload() if reload is not None else []

    try:
        httpd = http_server(web, store, reload=on_reload if reload is not None else None)
    except OSError as exc:
        host, port = web.address
        logger.error("cannot listen", extra={"address": f"{host}:{port}", "err": exc.strerror})
        return EXIT_FAILURE

    with Signals(stop) as signals:
        httpd.start()
        try:
            stop_work = start(httpd, signals.stop)
            signals.wait(on_reload)
            logger.info("shutting down")
            if stop is None:  # a real process: SIGTERM must end it in time
                exit_by(STOP_GRACE)
        finally:
            httpd.shutdown()
            httpd.server_close()
        stop_work()
    return EXIT_OK
