"""Build hook: the package records the source revision it was built from.

``exporter/_revision.py`` is written into the build (wheel, sdist); it is never part of the
source tree. The revision comes from ``RACKCONNECT_EXPORTER_REVISION`` (the container
image's ``REVISION`` build argument), else from git when building from a checkout, else
from the ``_revision.py`` an sdist carries, else it is ``unknown``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from exporter import git_revision  # noqa: E402 - the package being built

GENERATED = Path("exporter", "_revision.py")


def source_revision() -> str:
    """The revision to record (see the module's docstring)."""
    given = os.environ.get("RACKCONNECT_EXPORTER_REVISION", "").strip()
    if given:
        return given
    found = git_revision(ROOT)
    carried = ROOT / GENERATED
    if found == "unknown" and carried.is_file():  # building from an sdist
        return carried.read_text().split('"')[-2]
    return found


def write_revision(base: str) -> None:
    """Write ``exporter/_revision.py`` under ``base``."""
    path = Path(base, GENERATED)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'"""Written by setup.py."""\n\nREVISION = "{source_revision()}"\n')


class BuildPy(build_py):
    """build_py that adds ``exporter/_revision.py`` to the built package."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads git at run time
            write_revision(self.build_lib)


class Sdist(sdist):
    """sdist that carries ``exporter/_revision.py``, for wheels built from it."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        write_revision(base_dir)


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
