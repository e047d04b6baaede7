"""``check-config``: validate the configuration, print every problem, and exit."""

from __future__ import annotations

import argparse

from exporter.commands import flags
from exporter.errors import EXIT_OK, EXIT_USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check-config`` flags: those that say where the configuration is."""
    flags.add_config_flags(parser)
    flags.add_metadata_label_flag(parser)
    flags.add_web_config_flag(
        parser, "exporter-toolkit web configuration to check too (default: none)"
    )


def run(args: argparse.Namespace) -> int:
    """EXIT_OK and a summary when the configuration is usable, else EXIT_USAGE.

    Problems go to stderr as log lines in ``--log.format``; both files are always checked.
    """
    flags.setup_logging(args)
    config = flags.load_config(args)
    security_ok = flags.check_web_config(args.web_config_file)
    if config is None or not security_ok:
        return EXIT_USAGE
    names = ", ".join(a.name for a in config.accounts)
    print(f"configuration OK: {len(config.accounts)} account(s): {names}")
    if args.web_config_file:
        print(f"web configuration OK: {args.web_config_file}")
    return EXIT_OK
