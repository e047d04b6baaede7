"""``serve``: poll the configured accounts and serve metrics (the default command)."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

from exporter import __version__
from exporter.app import Exporter, Web, tune_runtime
from exporter.commands import flags
from exporter.commands.lifecycle import run_server
from exporter.config import Config
from exporter.errors import EXIT_USAGE
from exporter.logs import logger
from exporter.polling.supervisor import PollSettings
from exporter.web.server import ExporterHTTPServer


def add_serve_flags(parser: argparse.ArgumentParser, poll_interval: str) -> None:
    """The flags of ``serve``."""
    flags.add_web_flags(parser)
    flags.add_poll_interval_flag(
        parser, poll_interval, "how often to poll every account and region"
    )
    flags.add_scale_flags(parser)
    flags.add_shard_flags(parser)
    flags.add_metadata_label_flag(parser)
    flags.add_config_flags(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` flags to a parser."""
    add_serve_flags(parser, "60s")


def run(args: argparse.Namespace) -> int:
    """Poll the configured accounts and serve metrics until SIGTERM or SIGINT."""
    shard = flags.shard(args)
    config = flags.configure(args)
    web = flags.web(args) if config is not None else None
    if config is None or web is None:
        return EXIT_USAGE
    return run_exporter(
        config, flags.poll_settings(args), web, shard=shard, reload=flags.loader(args)
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
    exporter = Exporter(config.accounts, settings, shard=shard)
    polled = len(exporter.supervisor.configs)
    if total > 1:
        logger.info(
            "polling this shard's accounts",
            extra={
                "shard": f"{index}/{total}",
                "accounts": polled,
                "configured": len(config.accounts),
            },
        )

    def start(httpd: ExporterHTTPServer, _stop: threading.Event) -> Callable[[], None]:
        exporter.start()
        logger.info(
            "rackconnect-exporter started",
            extra={"version": __version__, "address": httpd.url, "accounts": polled},
        )
        if announce is not None:
            announce(httpd)
        return exporter.stop

    def reload_accounts() -> list[str]:
        """What SIGHUP and ``POST /-/reload`` do after re-reading the web configuration."""
        if reload is None:
            logger.info("nothing to reload: the accounts are built in")
            return []
        return exporter.reload(reload)

    return run_server(web, exporter.store, start, reload=reload_accounts, stop=stop)
