"""``serve``: poll the configured accounts and serve metrics (the default command)."""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import threading
import time
from collections.abc import Callable

from exporter import __version__
from exporter.commands import common
from exporter.commands.lifecycle import Web, run_server
from exporter.config import Config
from exporter.errors import EXIT_USAGE
from exporter.exposition.families import shard_families
from exporter.logs import logger
from exporter.polling.sharding import select
from exporter.polling.supervisor import PollSettings, Supervisor, reload_config
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer

# Region results arriving within this many seconds of each other share one snapshot.
PUBLISH_DELAY = 0.5
SWITCH_INTERVAL = 0.0002  # seconds a busy thread keeps the GIL while another waits for it
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed


def add_serve_flags(parser: argparse.ArgumentParser, poll_interval: str) -> None:
    """The flags of ``serve``."""
    common.add_web_flags(parser)
    common.add_poll_interval_flag(
        parser, poll_interval, "how often to poll every account and region"
    )
    common.add_scale_flags(parser)
    common.add_shard_flags(parser)
    common.add_metadata_label_flag(parser)
    common.add_config_flags(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` flags to a parser."""
    add_serve_flags(parser, "60s")


def run(args: argparse.Namespace) -> int:
    """Poll the configured accounts and serve metrics until SIGTERM or SIGINT."""
    shard = common.shard(args)
    config = common.configure(args)
    web = common.web(args) if config is not None else None
    if config is None or web is None:
        return EXIT_USAGE
    return run_exporter(
        config, common.poll_settings(args), web, shard=shard, reload=common.loader(args)
    )


def run_exporter(
    config: Config,
    settings: PollSettings,
    web: Web,
    *,
    shard: tuple[int, int] = (0, 1),
    announce: Callable[[ExporterHTTPServer], None] | None = None,
    stop: threading.Event | None = None,
    reload: Callable[[], Config] | None = None,
) -> int:
    """Start the pollers and the HTTP server; block until ``stop`` or a signal.

    With ``reload``, SIGHUP and ``POST /-/reload`` load the configuration again and apply it.
    """
    tune_runtime()
    index, total = shard
    accounts = select(config.accounts, lambda a: a.name, index, total)
    if total > 1:
        logger.info(
            "polling this shard's accounts",
            extra={
                "shard": f"{index}/{total}",
                "accounts": len(accounts),
                "configured": len(config.accounts),
            },
        )
    store = Store(settings.interval, publish_delay=PUBLISH_DELAY)
    store.config_reloaded(True, time.time())
    if total > 1:
        store.set_extra(shard_families(index, total))
    store.flush()  # a shard without accounts is ready at once: with these families
    pollers = Supervisor(store, settings, shard=shard)
    pollers.apply(config.accounts)  # before serving: /-/ready waits for these accounts

    def start(httpd: ExporterHTTPServer, _stop: threading.Event) -> Callable[[], None]:
        pollers.start()
        logger.info(
            "rackconnect-exporter started",
            extra={"version": __version__, "address": httpd.url, "accounts": len(accounts)},
        )
        if announce is not None:
            announce(httpd)
        return pollers.stop

    def reload_accounts() -> list[str]:
        if reload is None:
            logger.info("nothing to reload: the accounts are built in")
            return []
        return reload_config(reload, pollers, store)

    return run_server(web, store, start, reload=reload_accounts, stop=stop)


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


def fix_mmap_threshold() -> bool:
    """Give every large buffer its own mapping, returned to the system when it is freed.

    glibc raises its mmap threshold each time a mapped block is freed, so once a region's
    lines have been replaced, buffers of that size come from the heap instead, where freed
    space stays resident (up to 40 MiB at 10,000 servers). A fixed threshold stops that.
    Returns False where the C library has no ``mallopt`` (it then does nothing).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
