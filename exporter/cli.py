"""Command line: builds the parser from ``exporter/commands/``, dispatches, exits.

No command means ``serve``. Exit codes are those of ``exporter/errors.py``: EXIT_OK,
EXIT_FAILURE (for example the port is taken), EXIT_USAGE (bad flags or configuration);
``wait`` adds EXIT_FAILURE for a terminal failure state and EXIT_TIMEOUT.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from exporter import __version__, logs
from exporter.commands import (
    agent,
    check_config,
    demo,
    healthcheck,
    serve,
    simulate,
    status,
    wait,
)
from exporter.errors import EXIT_USAGE, UsageError

# Each command module has add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "serve": (serve, "poll the configured accounts and serve metrics (default)"),
    "demo": (
        demo,
        "run the simulated cloud and the exporter against it, no credentials needed",
    ),
    "check-config": (check_config, "validate the configuration and exit"),
    "healthcheck": (
        healthcheck,
        "ask the running exporter's /-/healthy: exit 0 healthy, 1 not (container health checks)",
    ),
    "simulate": (simulate, "serve only the simulated Rackspace cloud"),
    "status": (status, "poll the configured accounts once and print their servers"),
    "wait": (wait, "block until one server is ready (exit 0), failed (1), timed out (2)"),
    "agent": (
        agent,
        "run on a cloud server: expose its RackConnect and Managed Operations state",
    ),
}


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors exit with EXIT_USAGE, as JSON log lines if asked."""

    json_errors = False  # --log.format=json is on the command line

    def error(self, message: str) -> NoReturn:
        if _Parser.json_errors:
            logs.setup("info", "json")
            logs.logger.error("usage error", extra={"command": self.prog, "err": message})
            self.exit(EXIT_USAGE)
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _wants_json(argv: Sequence[str]) -> bool:
    """True when ``--log.format json`` is given, so that even usage errors are JSON."""
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    return any(a == "--log.format=json" or (a, b) == ("--log.format", "json") for a, b in pairs)


def build_parser() -> argparse.ArgumentParser:
    """The parser for every command; ``args.command`` names the one given."""
    parser = _Parser(
        prog="rackconnect-exporter",
        description="Prometheus exporter for RackConnect v2.0 and Managed Operations "
        "automation status of Rackspace cloud servers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        command = sub.add_parser(name, help=summary)
        module.add_arguments(command)
        command.set_defaults(parser=command)
    return parser


def _normalise_argv(argv: Sequence[str]) -> list[str]:
    """``rackconnect-exporter [flags]`` means ``rackconnect-exporter serve [flags]``."""
    args = list(argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    return args


def run(argv: Sequence[str] | None = None) -> int:
    """Run a command; return its exit code."""
    argv = _normalise_argv(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = _wants_json(argv)
    args = build_parser().parse_args(argv)
    module, _ = COMMANDS[args.command]
    try:
        return module.run(args)
    except UsageError as exc:
        command: argparse.ArgumentParser = args.parser
        command.error(str(exc))  # exits EXIT_USAGE


def main() -> None:
    """Console script entry point."""
    sys.exit(run())
