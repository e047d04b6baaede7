"""The flags several commands share: their declarations, their value types, and the typed
values the commands build from them.

The argparse Namespace stops in ``exporter/commands/``: these functions turn it into typed
values (Config, PollSettings, Web) for the runtime.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from exporter import logs
from exporter.app import Web
from exporter.config import (
    Config,
    ConfigError,
    load,
    merge_metadata_labels,
    parse_metadata_label,
)
from exporter.durations import parse_duration
from exporter.errors import InvalidConfigError, UsageError
from exporter.polling.incremental import DEFAULT_FULL_EVERY
from exporter.polling.ratelimit import DEFAULT_PER_MINUTE
from exporter.polling.sharding import parse_shard_index
from exporter.polling.supervisor import DEFAULT_WORKERS, PollSettings
from exporter.web.security import WebConfigError, WebSecurity

T = TypeVar("T")


def parse_listen_address(text: str) -> tuple[str, int]:
    """Parse ``host:port``, ``:port`` or ``[v6]:port`` into (host, port); empty host means all."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {text!r} (use host:port or :port)")
    return host.strip("[]"), int(port)


# --- value parsers (argparse types: a bad value is a usage error naming the flag) ---------


def duration(text: str) -> float:
    """A Go-style duration greater than zero, in seconds."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be greater than zero, not {text!r}")
    return seconds


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return number


def _flag_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse type: its ValueError becomes the flag's usage error."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__doc__ = parse.__doc__
    return convert


listen_address = _flag_type(parse_listen_address)  # host:port, :port or [v6]:port
metadata_label = _flag_type(parse_metadata_label)  # LABEL=KEY
shard_index = _flag_type(parse_shard_index)  # a number, or a pod name ending in one


# --- flag groups -----------------------------------------------------------------------------


def add_web_flags(parser: argparse.ArgumentParser) -> None:
    """``--web.listen-address``, ``--web.config.file``, ``--web.telemetry-path``."""
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        type=listen_address,
        default=parse_listen_address(":10054"),
        metavar="[HOST]:PORT",
        help="address to serve metrics on (default: :10054)",
    )
    add_web_config_flag(parser)
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        metavar="PATH",
        help="path under which to expose metrics (default: /metrics)",
    )


def add_web_config_flag(
    parser: argparse.ArgumentParser,
    what: str = "exporter-toolkit web configuration: TLS, basic auth, headers (default: none)",
) -> None:
    """``--web.config.file``, with the command's own meaning."""
    parser.add_argument("--web.config.file", dest="web_config_file", metavar="PATH", help=what)


def add_log_flags(parser: argparse.ArgumentParser) -> None:
    """``--log.level`` and ``--log.format``."""
    parser.add_argument(
        "--log.level",
        dest="log_level",
        choices=tuple(logs.LEVELS),
        default="info",
        help="only log messages with this severity or above (default: info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=("logfmt", "json"),
        default="logfmt",
        help="log line format (default: logfmt)",
    )


def add_poll_interval_flag(parser: argparse.ArgumentParser, default: str, what: str) -> None:
    """``--poll.interval``, with the command's own default and meaning."""
    parser.add_argument(
        "--poll.interval",
        dest="poll_interval",
        type=duration,
        default=parse_duration(default),
        metavar="DURATION",
        help=f"{what} (default: {default})",
    )


def add_poll_timeout_flag(parser: argparse.ArgumentParser) -> None:
    """``--poll.timeout``: the timeout of each upstream HTTP request."""
    parser.add_argument(
        "--poll.timeout",
        dest="poll_timeout",
        type=duration,
        default=parse_duration("30s"),
        metavar="DURATION",
        help="timeout of each upstream HTTP request (default: 30s)",
    )


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """``--config.file``, ``--poll.timeout`` and the log flags: every command that polls."""
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help="YAML file with accounts: (default: one account from RACKSPACE_* variables)",
    )
    add_poll_timeout_flag(parser)
    add_log_flags(parser)


def add_metadata_label_flag(parser: argparse.ArgumentParser) -> None:
    """``--server.metadata-label LABEL=KEY``, repeatable."""
    parser.add_argument(
        "--server.metadata-label",
        dest="metadata_labels",
        type=metadata_label,
        action="append",
        default=[],
        metavar="LABEL=KEY",
        help="the value of server metadata key KEY as label LABEL on rackconnect_server_info; "
        "repeatable; an account's metadata_labels in --config.file win (default: none)",
    )


def add_scale_flags(parser: argparse.ArgumentParser) -> None:
    """``--poll.full-every``, ``--poll.requests-per-minute``, ``--poll.concurrency``."""
    parser.add_argument(
        "--poll.full-every",
        dest="full_every",
        type=positive_int,
        default=DEFAULT_FULL_EVERY,
        metavar="N",
        help="list each region in full every N polls, only its changes in between "
        f"(1: always in full; default: {DEFAULT_FULL_EVERY})",
    )
    parser.add_argument(
        "--poll.requests-per-minute",
        dest="requests_per_minute",
        type=positive_int,
        default=DEFAULT_PER_MINUTE,
        metavar="N",
        help="most Cloud Servers requests per minute per account; Rackspace allows 1000 "
        f"(default: {DEFAULT_PER_MINUTE})",
    )
    parser.add_argument(
        "--poll.concurrency",
        dest="poll_concurrency",
        type=positive_int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help="most regions polled at the same time, over all accounts "
        f"(default: {DEFAULT_WORKERS})",
    )


def add_shard_flags(parser: argparse.ArgumentParser) -> None:
    """``--shard.index`` and ``--shard.total``: which of the configured accounts to poll."""
    parser.add_argument(
        "--shard.index",
        dest="shard_index",
        type=shard_index,
        default=0,
        metavar="I",
        help="this replica's shard, 0 to --shard.total - 1; a StatefulSet pod name such as "
        "exporter-2 also works (default: 0)",
    )
    parser.add_argument(
        "--shard.total",
        dest="shard_total",
        type=positive_int,
        default=1,
        metavar="N",
        help="how many replicas split the accounts between them (default: 1)",
    )


# --- typed values from the flags -------------------------------------------------------------


def setup_logging(args: argparse.Namespace) -> None:
    """Configure logging from ``--log.level`` and ``--log.format``."""
    logs.setup(args.log_level, args.log_format)


def metadata_labels(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The ``--server.metadata-label`` pairs; UsageError when a label is given twice."""
    pairs: tuple[tuple[str, str], ...] = tuple(getattr(args, "metadata_labels", ()))
    seen: set[str] = set()
    for label, _ in pairs:
        if label in seen:
            raise UsageError(f"argument --server.metadata-label: {label!r} is given twice")
        seen.add(label)
    return pairs


def loader(args: argparse.Namespace) -> Callable[[], Config]:
    """Loads the configuration as the flags say (at start and on SIGHUP); raises ConfigError."""
    path, labels = args.config_file, metadata_labels(args)
    return lambda: merge_metadata_labels(load(path), labels)


def load_config(args: argparse.Namespace) -> Config | None:
    """The configuration of ``--config.file`` (or the environment); None after printing why."""
    load_now = loader(args)
    try:
        return load_now()
    except ConfigError as exc:
        _print_problems("config error", exc)
        return None


def configure(args: argparse.Namespace) -> Config | None:
    """Set up logging, load the configuration, keep its secrets out of every log line."""
    setup_logging(args)
    config = load_config(args)
    if config is not None:
        logs.add_secrets(config.secrets())
    return config


def web(args: argparse.Namespace) -> Web | None:
    """Where and how to serve, from the web flags; None after printing why it is unusable."""
    try:
        security = WebSecurity(args.web_config_file)
    except WebConfigError as exc:
        _print_problems("web config error", exc)
        return None
    return Web(args.listen_address, args.telemetry_path, security)


def check_web_config(path: str | None) -> bool:
    """True when ``--web.config.file`` is usable (or not given); else logs every problem."""
    if not path:
        return True
    try:
        WebSecurity(path)
    except WebConfigError as exc:
        _print_problems("web config error", exc)
        return False
    return True


def _print_problems(what: str, exc: InvalidConfigError) -> None:
    """One log line per problem, in the ``--log.format`` the command set up."""
    for problem in exc.problems:
        logs.logger.error(what, extra={"problem": problem})


def poll_settings(args: argparse.Namespace) -> PollSettings:
    """The ``--poll.*`` flags."""
    return PollSettings(
        interval=args.poll_interval,
        timeout=args.poll_timeout,
        full_every=args.full_every,
        requests_per_minute=args.requests_per_minute,
        workers=args.poll_concurrency,
    )


def shard(args: argparse.Namespace) -> tuple[int, int]:
    """(index, total) of ``--shard.index`` and ``--shard.total``; UsageError if they clash."""
    if args.shard_index >= args.shard_total:
        raise UsageError(
            f"argument --shard.index: must be below --shard.total ({args.shard_total}), "
            f"not {args.shard_index}"
        )
    return args.shard_index, args.shard_total
