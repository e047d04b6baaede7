"""The exporter assembled once: the store, its pollers, the HTTP server, runtime tuning.

``serve``, ``demo`` and ``status`` build the exporter here, and so do the benchmark and
the test fixtures, so that all of them run the same parts with the same settings.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from exporter.config import AccountConfig, Config
from exporter.polling.supervisor import PollSettings, Supervisor, reload_config
from exporter.store import Snapshot, Store
from exporter.web.security import WebSecurity
from exporter.web.server import ExporterHTTPServer

# Region results arriving within this many seconds of each other share one snapshot.
PUBLISH_DELAY = 0.5
SWITCH_INTERVAL = 0.0002  # seconds a busy thread keeps the GIL while another waits for it
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed
ARENA_MAX = 2  # heaps for all threads, as MALLOC_ARENA_MAX=2


@dataclass(frozen=True)
class Web:
    """Where and how to serve: the web flags, checked."""

    address: tuple[str, int]
    telemetry_path: str = "/metrics"
    security: WebSecurity = field(default_factory=lambda: WebSecurity(None))


def http_server(
    web: Web, store: Store, reload: Callable[[], list[str]] | None = None
) -> ExporterHTTPServer:
    """The HTTP server of ``store``, listening as ``web`` says; OSError if it cannot.

    With ``reload``, ``POST /-/reload`` calls it (it returns why it refused, or nothing).
    """
    return ExporterHTTPServer(web.address, store, web.telemetry_path, web.security, reload=reload)


class Exporter:
    """One exporter: the store (with its publish delay) and the pollers writing to it.

    ``start`` polls on timers, ``poll_once`` polls every account now and publishes,
    ``listen`` serves the store over HTTP, ``stop`` ends all of it.
    """

    def __init__(
        self,
        accounts: Iterable[AccountConfig],
        settings: PollSettings,
        *,
        shard: tuple[int, int] = (0, 1),
        publish_delay: float = PUBLISH_DELAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = Store(
            settings.interval,
            publish_delay=publish_delay,
            clock=clock,
            shard=shard if shard[1] > 1 else None,
        )
        self.store.config_reloaded(True, time.time())
        self.store.flush()  # a shard without accounts is ready at once: with these families
        self.supervisor = Supervisor(self.store, settings, shard=shard)
        self.supervisor.apply(accounts)  # before serving: /-/ready waits for these accounts
        self.httpd: ExporterHTTPServer | None = None

    def listen(self, web: Web, *, poll_interval: float = 0.1) -> ExporterHTTPServer:
        """Serve the store over HTTP from a thread; OSError when the address is taken.

        ``stop`` waits up to ``poll_interval`` for the server to notice.
        """
        self.httpd = http_server(web, self.store)
        self.httpd.start(poll_interval)
        return self.httpd

    def start(self) -> None:
        """Poll every account now, then each region on its own timer."""
        self.supervisor.start()

    def poll_once(self, *accounts: str) -> Snapshot:
        """Poll every account (or those named) once, now; the snapshot with the results."""
        self.supervisor.poll_now(*accounts)
        self.store.flush()
        return self.store.current

    def reload(self, load: Callable[[], Config]) -> list[str]:
        """Load the configuration again and apply it; why it was refused (old one kept)."""
        return reload_config(load, self.supervisor, self.store)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and polling; polls in flight are cut off, not waited for."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
        self.supervisor.stop(timeout)


def tune_runtime() -> None:
    """Keep scrapes quick while a poll is busy decoding and rendering.

    A poll holds the GIL for long stretches, and a scrape needs it a few times (to read
    the request, to send each part); a shorter switch interval lets the HTTP threads in
    after 0.2 ms instead of 5 ms, each time. A poll of a large fleet also allocates
    hundreds of thousands of short-lived objects; fewer young collections keep it from
    scanning the long-lived fleet over and over.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(50_000, 20, 100)
    fix_mmap_threshold()
    limit_arenas()


def _mallopt() -> Callable[[int, int], int] | None:
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return None


def fix_mmap_threshold() -> bool:
    """Give every large buffer its own mapping, returned to the system when it is freed.

    glibc raises its mmap threshold each time a mapped block is freed, so once a region's
    lines have been replaced, buffers of that size come from the heap instead, where freed
    space stays resident (up to 40 MiB at 10,000 servers). A fixed threshold stops that.
    Returns False where the C library has no ``mallopt`` (it then does nothing).
    """
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def limit_arenas() -> bool:
    """Let every thread share two heaps, unless ``MALLOC_ARENA_MAX`` says otherwise.

    glibc gives each thread that allocates a heap of its own, up to eight per core, and
    space freed in one is not reused by another. Regions are polled in several threads,
    and a region's changed chunks of lines (most below the mmap threshold) are freed in
    one heap while the next ones are made in another, where the freed space then stays
    resident. The container image and the systemd unit also set the variable. Returns
    False where it did nothing.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False  # glibc read it at start
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
