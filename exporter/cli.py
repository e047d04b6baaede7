"""Command line: flags and subcommands; builds the parts and wires them together.

Exit codes: 0 success, 1 runtime failure (for example the port is taken), 3 bad usage
or configuration.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from exporter import __version__, logs
from exporter.config import AccountConfig, Config, ConfigError, load
from exporter.flags import parse_duration, parse_listen_address
from exporter.logs import logger
from exporter.reload import AccountPollers, reload_config
from exporter.simulator import Scenario, Simulator
from exporter.simulator import command as simulator_command
from exporter.snapshot import Store
from exporter.web import ExporterHTTPServer
from exporter.webconfig import WebConfigError, WebSecurity

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 3

COMMANDS = ("serve", "demo", "simulate", "check-config")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors exit with EXIT_USAGE."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be greater than zero, not {text!r}")
    return seconds


def _listen_address(text: str) -> tuple[str, int]:
    try:
        return parse_listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help="YAML file with accounts: (default: one account from RACKSPACE_* variables)",
    )
    parser.add_argument(
        "--poll.timeout",
        dest="poll_timeout",
        type=_duration,
        default=parse_duration("30s"),
        metavar="DURATION",
        help="timeout of each upstream HTTP request (default: 30s)",
    )
    _add_log_flags(parser)


def _add_log_flags(parser: argparse.ArgumentParser) -> None:
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


def _add_serve_flags(parser: argparse.ArgumentParser, poll_interval: str = "60s") -> None:
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        type=_listen_address,
        default=parse_listen_address(":10054"),
        metavar="[HOST]:PORT",
        help="address to serve metrics on (default: :10054)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="exporter-toolkit web configuration: TLS, basic auth, headers (default: none)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        metavar="PATH",
        help="path under which to expose metrics (default: /metrics)",
    )
    parser.add_argument(
        "--poll.interval",
        dest="poll_interval",
        type=_duration,
        default=parse_duration(poll_interval),
        metavar="DURATION",
        help=f"how often to poll every account and region (default: {poll_interval})",
    )
    _add_config_flags(parser)


def build_parser() -> argparse.ArgumentParser:
    """The parser for every subcommand."""
    parser = _Parser(
        prog="rackconnect-exporter",
        description="Prometheus exporter for RackConnect v2.0 and Managed Operations "
        "automation status of Rackspace cloud servers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    serve = sub.add_parser("serve", help="poll the configured accounts and serve metrics (default)")
    _add_serve_flags(serve)

    demo = sub.add_parser(
        "demo", help="run the simulated cloud and the exporter against it, no credentials needed"
    )
    _add_serve_flags(demo, poll_interval="10s")
    demo.add_argument(
        "--simulator.listen-address",
        dest="simulator_address",
        type=_listen_address,
        default=parse_listen_address("127.0.0.1:10055"),
        metavar="[HOST]:PORT",
        help="address of the simulated cloud (default: 127.0.0.1:10055)",
    )
    demo.add_argument(
        "--simulator.step-interval",
        dest="step_interval",
        default="5s",
        metavar="DURATION",
        help="how often the simulated fleet changes; 0 to freeze it (default: 5s)",
    )
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulated fleet")

    check = sub.add_parser("check-config", help="validate the configuration and exit")
    _add_config_flags(check)

    simulate = sub.add_parser("simulate", help="serve only the simulated Rackspace cloud")
    simulator_command.add_arguments(simulate)
    return parser


def _normalise_argv(argv: Sequence[str]) -> list[str]:
    """``rackconnect-exporter [flags]`` means ``rackconnect-exporter serve [flags]``."""
    args = list(argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    return args


def run(argv: Sequence[str] | None = None) -> int:
    """Run a command; return its exit code."""
    args = build_parser().parse_args(_normalise_argv(sys.argv[1:] if argv is None else argv))
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": serve,
        "demo": demo,
        "check-config": check_config,
        "simulate": simulate,
    }
    return handlers[args.command](args)


def main() -> None:
    """Console script entry point."""
    sys.exit(run())


def _load_config(args: argparse.Namespace) -> Config | None:
    try:
        return load(args.config_file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return None


def check_config(args: argparse.Namespace) -> int:
    """Validate the configuration; print every problem."""
    config = _load_config(args)
    if config is None:
        return EXIT_USAGE
    names = ", ".join(a.name for a in config.accounts)
    print(f"configuration OK: {len(config.accounts)} account(s): {names}")
    return EXIT_OK


def serve(args: argparse.Namespace) -> int:
    """Poll the configured accounts and serve metrics until SIGTERM or SIGINT."""
    logs.setup(args.log_level, args.log_format)
    config = _load_config(args)
    if config is None:
        return EXIT_USAGE
    logs.add_secrets(config.secrets())
    return run_exporter(config, args, reload=lambda: load(args.config_file))


def run_exporter(
    config: Config,
    args: argparse.Namespace,
    announce: Callable[[ExporterHTTPServer], None] | None = None,
    stop: threading.Event | None = None,
    reload: Callable[[], Config] | None = None,
) -> int:
    """Start the pollers and the HTTP server; block until ``stop`` or a signal.

    With ``reload``, SIGHUP loads the configuration again and applies it.
    """
    try:
        security = WebSecurity(args.web_config_file)
    except WebConfigError as exc:
        for problem in exc.problems:
            print(f"web config error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    signals = _Signals(stop)
    stop = signals.stop
    store = Store([a.name for a in config.accounts], args.poll_interval)
    store.config_reloaded(True, time.time())
    try:
        httpd = ExporterHTTPServer(args.listen_address, store, args.telemetry_path, security)
    except OSError as exc:
        host, port = args.listen_address
        logger.error("cannot listen", extra={"address": f"{host}:{port}", "err": exc.strerror})
        return EXIT_FAILURE
    pollers = AccountPollers(store, args.poll_interval, args.poll_timeout)
    httpd.start()
    pollers.apply(config.accounts)
    logger.info(
        "rackconnect-exporter started",
        extra={"version": __version__, "address": httpd.url, "accounts": len(config.accounts)},
    )
    if announce is not None:
        announce(httpd)
    while not stop.wait(0.2):
        signals.log()
        if signals.reload.is_set():
            signals.reload.clear()
            security.maybe_reload(force=True)
            if reload is None:
                logger.info("nothing to reload: the accounts are built in")
            else:
                reload_config(reload, pollers, store)
    signals.log()
    logger.info("shutting down")
    httpd.shutdown()
    httpd.server_close()
    pollers.stop()
    return EXIT_OK


class _Signals:
    """SIGTERM and SIGINT set ``stop``, SIGHUP sets ``reload``; the main loop logs them.

    Given an event to stop on, no handler is installed (tests and embedding).
    """

    def __init__(self, stop: threading.Event | None) -> None:
        self.reload = threading.Event()
        self.received: list[int] = []
        if stop is not None:
            self.stop = stop
            return
        self.stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        # Only flags here: logging from a signal handler can deadlock on its lock.
        self.received.append(signum)
        (self.reload if signum == signal.SIGHUP else self.stop).set()

    def log(self) -> None:
        """Log the signals received since the last call."""
        while self.received:
            name = signal.Signals(self.received.pop(0)).name
            logger.info("signal received", extra={"signal": name})


def demo(args: argparse.Namespace) -> int:
    """The simulated cloud and the exporter, in one process."""
    logs.setup(args.log_level, args.log_format)
    try:
        step = parse_duration(args.step_interval)
    except ValueError as exc:
        print(
            f"rackconnect-exporter demo: error: --simulator.step-interval: {exc}", file=sys.stderr
        )
        return EXIT_USAGE
    simulator = Simulator(Scenario.demo(seed=args.seed), step_interval=step or None)
    host, port = args.simulator_address
    try:
        simulator.start(host=host or "127.0.0.1", port=port)
    except OSError as exc:
        logger.error("cannot start the simulated cloud", extra={"err": exc.strerror})
        return EXIT_FAILURE
    config = Config(
        tuple(
            AccountConfig(
                name=account.name,
                username=account.username,
                api_key=account.api_key,
                identity_url=simulator.identity_url,
            )
            for account in simulator.accounts
        )
    )

    def announce(httpd: ExporterHTTPServer) -> None:
        print(
            "\nrackconnect-exporter demo: a simulated Rackspace cloud and the exporter.\n"
            f"  landing page    {httpd.url}/\n"
            f"  metrics         {httpd.url}{args.telemetry_path}\n"
            f"  simulated cloud {simulator.base_url}/v2.0/ (control API: "
            f"{simulator.base_url}/_control/servers)\n"
            "Press Ctrl+C to stop.\n",
            flush=True,
        )

    try:
        return run_exporter(config, args, announce)
    finally:
        simulator.stop()


def simulate(args: argparse.Namespace) -> int:
    """Serve only the simulated cloud."""
    return simulator_command.run(args)
