"""Prometheus exporter for RackConnect v2.0 and Managed Operations automation status."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import subprocess
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


def git_revision(root: Path) -> str:
    """The commit checked out in ``root`` by git; ``unknown`` when it is not a checkout."""
    if not (root / ".git").exists():
        return "unknown"
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found or "unknown"


@functools.cache
def revision() -> str:
    """The source revision: recorded at build time, or git's when run from a checkout.

    ``unknown`` when neither says (a tree without git, a build that was not told).
    """
    try:  # written into the build by setup.py; never in the source tree
        return str(importlib.import_module("exporter._revision").REVISION)
    except ImportError:
        return git_revision(Path(__file__).parent.parent)
