"""Command line: flags and subcommands; builds the parts and wires them together.

Exit codes: 0 success, 1 runtime failure (for example the port is taken), 3 bad usage
or configuration. ``wait`` adds 1 for a terminal failure state and 2 for a timeout.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence

from exporter import __version__, logs
from exporter.commands import agent as agent_command
from exporter.commands import status as status_command
from exporter.commands import wait as wait_command
from exporter.config import AccountConfig, Config, ConfigError, load
from exporter.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from exporter.flags import parse_duration, parse_listen_address
from exporter.logs import logger
from exporter.polling.incremental import DEFAULT_FULL_EVERY
from exporter.polling.ratelimit import DEFAULT_PER_MINUTE
from exporter.polling.sharding import parse_shard_index, select
from exporter.polling.supervisor import DEFAULT_WORKERS, PollSettings, Supervisor, reload_config
from exporter.runtime import tune_runtime
from exporter.simulator import Scenario, Simulator
from exporter.simulator import command as simulator_command
from exporter.store import Store
from exporter.web.security import WebConfigError, WebSecurity
from exporter.web.server import ExporterHTTPServer

# Region results arriving within this many seconds of each other share one snapshot.
PUBLISH_DELAY = 0.5

COMMANDS = ("serve", "demo", "simulate", "check-config", "status", "wait", "agent")


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
    _add_poll_timeout_flag(parser)
    _add_log_flags(parser)


def _add_poll_timeout_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll.timeout",
        dest="poll_timeout",
        type=_duration,
        default=parse_duration("30s"),
        metavar="DURATION",
        help="timeout of each upstream HTTP request (default: 30s)",
    )


def _add_poll_interval_flag(parser: argparse.ArgumentParser, default: str, what: str) -> None:
    parser.add_argument(
        "--poll.interval",
        dest="poll_interval",
        type=_duration,
        default=parse_duration(default),
        metavar="DURATION",
        help=f"{what} (default: {default})",
    )


def _add_web_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        type=_listen_address,
        default=parse_listen_address(":10054"),
        metavar="[HOST]:PORT",
        help="address to serve metrics on (default: :10054)",
    )
    _add_web_config_flag(parser)
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        metavar="PATH",
        help="path under which to expose metrics (default: /metrics)",
    )


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
    _add_web_flags(parser)
    _add_poll_interval_flag(parser, poll_interval, "how often to poll every account and region")
    _add_scale_flags(parser)
    _add_config_flags(parser)


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return number


def _shard_index(text: str) -> int:
    try:
        return parse_shard_index(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_scale_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll.full-every",
        dest="full_every",
        type=_positive_int,
        default=DEFAULT_FULL_EVERY,
        metavar="N",
        help="list each region in full every N polls, only its changes in between "
        f"(1: always in full; default: {DEFAULT_FULL_EVERY})",
    )
    parser.add_argument(
        "--poll.requests-per-minute",
        dest="requests_per_minute",
        type=_positive_int,
        default=DEFAULT_PER_MINUTE,
        metavar="N",
        help="most Cloud Servers requests per minute per account; Rackspace allows 1000 "
        f"(default: {DEFAULT_PER_MINUTE})",
    )
    parser.add_argument(
        "--poll.concurrency",
        dest="poll_concurrency",
        type=_positive_int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help="most regions polled at the same time, over all accounts "
        f"(default: {DEFAULT_WORKERS})",
    )
    parser.add_argument(
        "--shard.index",
        dest="shard_index",
        type=_shard_index,
        default=0,
        metavar="I",
        help="this replica's shard, 0 to --shard.total - 1; a StatefulSet pod name such as "
        "exporter-2 also works (default: 0)",
    )
    parser.add_argument(
        "--shard.total",
        dest="shard_total",
        type=_positive_int,
        default=1,
        metavar="N",
        help="how many replicas split the accounts between them (default: 1)",
    )


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

    status = sub.add_parser(
        "status",
        help="poll the configured accounts once and print their servers",
        description="Poll every configured account once and print a table (or JSON) of "
        "servers. Exit 0; 3 on a configuration error or when every account failed to "
        "authenticate; 1 when no account could be reached.",
    )
    _add_status_flags(status)

    wait = sub.add_parser(
        "wait",
        help="block until one server is ready (exit 0), failed (1), timed out (2)",
        description="Poll one server until it is ready. Exit codes: 0 ready, 1 a terminal "
        "failure (FAILED, UNPROCESSABLE, Build Error, Authentication Error, status ERROR, "
        "deleted), 2 timeout, 3 usage, configuration or authentication error, or server "
        "not found.",
    )
    _add_wait_flags(wait)

    agent = sub.add_parser(
        "agent",
        help="run on a cloud server: expose its RackConnect and Managed Operations state",
        description="Run on a cloud server: poll the RackConnect in-server API (at most 30 "
        "requests a minute) and the Managed Operations completion file, and serve the "
        "exporter's metrics for this server.",
    )
    _add_agent_flags(agent)
    return parser


def _add_status_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        choices=("table", "json"),
        default="table",
        help="table or json (default: table)",
    )
    parser.add_argument(
        "--region",
        dest="regions",
        action="append",
        default=[],
        metavar="REGION",
        help="only servers in this region (GLOBAL for first generation); repeatable",
    )
    parser.add_argument(
        "--server", metavar="ID_OR_NAME", help="only the server with this id or name"
    )
    parser.add_argument(
        "--not-ready", dest="not_ready", action="store_true", help="only servers that are not ready"
    )
    _add_config_flags(parser)


def _add_web_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="exporter-toolkit web configuration: TLS, basic auth, headers (default: none)",
    )


def _web_security(args: argparse.Namespace) -> WebSecurity | None:
    """The web configuration of ``--web.config.file``; None (after saying why) if unusable."""
    try:
        return WebSecurity(args.web_config_file)
    except WebConfigError as exc:
        for problem in exc.problems:
            print(f"web config error: {problem}", file=sys.stderr)
        return None


def _add_agent_flags(parser: argparse.ArgumentParser) -> None:
    _add_web_flags(parser)
    _add_poll_interval_flag(
        parser,
        "60s",
        "how often to read the in-server API; never more than 30 requests a minute whatever "
        "this says",
    )
    _add_poll_timeout_flag(parser)
    parser.add_argument(
        "--rackconnect.region",
        dest="rackconnect_region",
        metavar="REGION",
        help="the server's region (ORD, DFW, IAD, LON, SYD, HKG); default: from XenStore",
    )
    parser.add_argument(
        "--rackconnect.url",
        dest="rackconnect_url",
        metavar="URL",
        help="base URL of the in-server API (default: "
        "https://{region}.api.rackconnect.rackspace.com)",
    )
    parser.add_argument(
        "--server.id",
        dest="server_id",
        metavar="ID",
        help="the server_id label (default: from the API, else XenStore, else the host name)",
    )
    parser.add_argument(
        "--server.name",
        dest="server_name",
        metavar="NAME",
        help="the name label (default: the host name)",
    )
    parser.add_argument(
        "--server.generation",
        dest="generation",
        choices=("next", "first"),
        default="next",
        help="the generation label (default: next)",
    )
    parser.add_argument(
        "--account.name",
        dest="account_name",
        default=agent_command.ACCOUNT,
        metavar="NAME",
        help=f"the account label (default: {agent_command.ACCOUNT})",
    )
    parser.add_argument(
        "--managed",
        choices=("auto", "true", "false"),
        default="auto",
        help="whether this server has Managed Operations, so ready waits for the completion "
        "file; auto: from the XenStore roles, else false (default: auto)",
    )
    parser.add_argument(
        "--managed.completion-file",
        dest="completion_file",
        default=agent_command.default_completion_file(),
        metavar="PATH",
        help="the file Managed Operations creates when done (default: %(default)s)",
    )
    _add_log_flags(parser)


def _add_wait_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("server_id", metavar="SERVER_ID", help="the server's id")
    parser.add_argument(
        "--for",
        dest="wait_for",
        choices=wait_command.TARGETS,
        default="ready",
        help="what to wait for: RackConnect automation, Managed Operations, or both "
        "(the rackconnect_server_ready rule) (default: ready)",
    )
    parser.add_argument(
        "--region",
        metavar="REGION",
        help="the server's region (GLOBAL for first generation); default: search every "
        "region of the account once",
    )
    parser.add_argument(
        "--account", metavar="NAME", help="only this configured account (default: every one)"
    )
    parser.add_argument(
        "--interval",
        type=_duration,
        default=parse_duration("5s"),
        metavar="DURATION",
        help="first pause between polls; it grows x1.5 up to 60s and starts again at each "
        "change (default: 5s)",
    )
    parser.add_argument(
        "--timeout",
        type=_duration,
        default=parse_duration("30m"),
        metavar="DURATION",
        help="give up (exit 2) after this long (default: 30m)",
    )
    _add_config_flags(parser)


def _normalise_argv(argv: Sequence[str]) -> list[str]:
    """``rackconnect-exporter [flags]`` means ``rackconnect-exporter serve [flags]``."""
    args = list(argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    return args


def run(argv: Sequence[str] | None = None) -> int:
    """Run a command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(_normalise_argv(sys.argv[1:] if argv is None else argv))
    shard_total = getattr(args, "shard_total", 1)
    if getattr(args, "shard_index", 0) >= shard_total:
        parser.error(
            f"argument --shard.index: must be below --shard.total ({shard_total}), "
            f"not {args.shard_index}"
        )
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": serve,
        "demo": demo,
        "check-config": check_config,
        "simulate": simulate,
        "wait": wait,
        "status": status,
        "agent": agent,
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
    security = _web_security(args)
    if security is None:
        return EXIT_USAGE
    signals = _Signals(stop)
    stop = signals.stop
    tune_runtime()
    shard = (args.shard_index, args.shard_total)
    accounts = select(config.accounts, lambda a: a.name, *shard)
    if args.shard_total > 1:
        logger.info(
            "polling this shard's accounts",
            extra={
                "shard": f"{args.shard_index}/{args.shard_total}",
                "accounts": len(accounts),
                "configured": len(config.accounts),
            },
        )
    store = Store(args.poll_interval, publish_delay=PUBLISH_DELAY)
    store.config_reloaded(True, time.time())
    try:
        httpd = ExporterHTTPServer(args.listen_address, store, args.telemetry_path, security)
    except OSError as exc:
        host, port = args.listen_address
        logger.error("cannot listen", extra={"address": f"{host}:{port}", "err": exc.strerror})
        return EXIT_FAILURE
    settings = PollSettings(
        interval=args.poll_interval,
        timeout=args.poll_timeout,
        full_every=args.full_every,
        requests_per_minute=args.requests_per_minute,
        workers=args.poll_concurrency,
    )
    pollers = Supervisor(store, settings, shard=shard)
    pollers.apply(config.accounts)
    httpd.start()
    pollers.start()
    logger.info(
        "rackconnect-exporter started",
        extra={"version": __version__, "address": httpd.url, "accounts": len(accounts)},
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
                generations=("next", "first") if account.first_gen else ("next",),
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


def wait(args: argparse.Namespace) -> int:
    """Block until one server is ready; the exit code says how it ended."""
    logs.setup(args.log_level, args.log_format)
    config = _load_config(args)
    if config is None:
        return EXIT_USAGE
    logs.add_secrets(config.secrets())
    waiter = wait_command.Waiter(
        config,
        args.server_id,
        wanted=args.wait_for,
        region=args.region,
        account=args.account,
        interval=args.interval,
        timeout=args.timeout,
        request_timeout=args.poll_timeout,
        out=sys.stdout,
        err=sys.stderr,
    )
    try:
        return waiter.run()
    except KeyboardInterrupt:
        return 130


def status(args: argparse.Namespace) -> int:
    """Poll every account once and print its servers."""
    logs.setup(args.log_level, args.log_format)
    config = _load_config(args)
    if config is None:
        return EXIT_USAGE
    logs.add_secrets(config.secrets())
    return status_command.run(
        config,
        timeout=args.poll_timeout,
        output=args.output,
        regions=[r for value in args.regions for r in value.split(",") if r.strip()],
        server=args.server,
        not_ready=args.not_ready,
        out=sys.stdout,
        err=sys.stderr,
    )


def agent(args: argparse.Namespace) -> int:
    """Serve the local server's RackConnect and Managed Operations state."""
    logs.setup(args.log_level, args.log_format)
    region = args.rackconnect_region
    if region is None and args.rackconnect_url:
        region = agent_command.region_from_url(args.rackconnect_url)
    if region is None:
        region = agent_command.xenstore_read("vm-data/provider_data/region")
    if region is None and not args.rackconnect_url:
        print(
            "rackconnect-exporter agent: error: give --rackconnect.region (or --rackconnect.url)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    region = (region or "").upper()
    managed = args.managed == "true"
    if args.managed == "auto":
        roles = agent_command.xenstore_read("vm-data/provider_data/roles") or ""
        managed = "rax_managed" in roles
    security = _web_security(args)
    if security is None:
        return EXIT_USAGE
    store = Store(args.poll_interval)
    the_agent = agent_command.Agent(
        store,
        base_url=args.rackconnect_url or agent_command.default_url(region),
        region=region,
        server_id=args.server_id,
        server_name=args.server_name or socket.gethostname(),
        generation=args.generation,
        managed=managed,
        completion_file=args.completion_file,
        account=args.account_name,
        timeout=args.poll_timeout,
    )
    try:
        httpd = ExporterHTTPServer(args.listen_address, store, args.telemetry_path, security)
    except OSError as exc:
        host, port = args.listen_address
        logger.error("cannot listen", extra={"address": f"{host}:{port}", "err": exc.strerror})
        return EXIT_FAILURE
    signals = _Signals(None)
    stop = signals.stop
    httpd.start()
    thread = threading.Thread(
        target=the_agent.run, args=(stop, args.poll_interval), name="agent", daemon=True
    )
    thread.start()
    logger.info(
        "rackconnect-exporter agent started",
        extra={"version": __version__, "address": httpd.url, "api": the_agent.api.base_url},
    )
    while not stop.wait(0.2):
        signals.log()
        if signals.reload.is_set():
            signals.reload.clear()
            security.maybe_reload(force=True)
    signals.log()
    logger.info("shutting down")
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)
    the_agent.close()
    return EXIT_OK
