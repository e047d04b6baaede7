"""Prometheus exporter for RackConnect v2.0 and Managed Operations automation status."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

DISTRIBUTION = "rackconnect-exporter"


def _version() -> str:
    """The installed distribution's version; from a clone without install, its pyproject.toml."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        with (Path(__file__).parent.parent / "pyproject.toml").open("rb") as file:
            project = tomllib.load(file)["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"
    return project["version"] if project.get("name") == DISTRIBUTION else "0+unknown"


__version__ = _version()
