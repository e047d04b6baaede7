"""``check-config``: validate the configuration, print every problem, and exit."""

from __future__ import annotations

import argparse

from exporter.commands import common
from exporter.errors import EXIT_OK, EXIT_USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check-config`` flags: those that say where the configuration is."""
    common.add_config_flags(parser)


def run(args: argparse.Namespace) -> int:
    """EXIT_OK and a summary when the configuration is usable, else EXIT_USAGE."""
    config = common.load_config(args)
    if config is None:
        return EXIT_USAGE
    names = ", ".join(a.name for a in config.accounts)
    print(f"configuration OK: {len(config.accounts)} account(s): {names}")
    return EXIT_OK
