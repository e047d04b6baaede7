"""Release hygiene: one version, from the package metadata; LICENSE and CHANGELOG present."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import exporter
from tests.ops_helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
VERSION = PYPROJECT["version"]

# Files that may spell the version out, and why.
VERSION_ALLOWED = {
    "pyproject.toml": "the one place the version is set",
    "CHANGELOG.md": "one heading per release",
    "deploy/kubernetes/kustomization.yaml": "pins the published image tag; bumped on release",
    "tests/test_deploy.py": "checks that pin",
    "tests/golden/exposition.prom": "build_info of the golden exposition",
    "tests/golden/exposition.om": "build_info of the golden exposition",
}


def test_version_is_the_installed_metadata_version() -> None:
    """exporter.__version__ is read from the distribution's metadata, set in pyproject.toml."""
    assert exporter.__version__ == importlib.metadata.version("rackconnect-exporter")
    assert exporter.__version__ == VERSION, "reinstall: the metadata is older than pyproject.toml"


def test_version_without_install_comes_from_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a clone without installing, the version is pyproject.toml's."""

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert exporter._version() == VERSION


def test_no_other_file_hard_codes_the_version() -> None:
    """Only the files in VERSION_ALLOWED contain the version string."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    pattern = re.compile(rb"(?<![\w.])" + re.escape(VERSION.encode()) + rb"(?![\w.])")
    found = set()
    for name in filter(None, listed):
        path = REPO / name.decode()
        if path.is_file() and pattern.search(path.read_bytes()):
            found.add(name.decode())
    assert found - set(VERSION_ALLOWED) == set()


def test_dockerfile_takes_the_version_as_a_build_argument() -> None:
    """The Dockerfile declares ARG VERSION without a default and uses it for the label only."""
    text = (REPO / "Dockerfile").read_text()
    assert re.findall(r"^ARG VERSION\S*", text, re.M) == ["ARG VERSION"]
    assert 'org.opencontainers.image.version="${VERSION:-unknown}"' in text


def test_dockerfile_takes_the_revision_as_a_build_argument() -> None:
    """REVISION reaches the wheel's build (build_info) and the image's revision label."""
    text = (REPO / "Dockerfile").read_text()
    assert re.findall(r"^ARG REVISION\S*", text, re.M) == ["ARG REVISION", "ARG REVISION"]
    assert 'RACKCONNECT_EXPORTER_REVISION="${REVISION}"' in text
    assert 'org.opencontainers.image.revision="${REVISION:-unknown}"' in text


def test_license_is_apache_2() -> None:
    """LICENSE holds the full Apache License 2.0 that pyproject.toml names."""
    text = (REPO / "LICENSE").read_text()
    assert PYPROJECT["license"] == {"text": "Apache-2.0"}
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) > 200


def test_changelog_has_unreleased_and_this_version() -> None:
    """CHANGELOG.md follows Keep a Changelog: an Unreleased section and one per release."""
    headings = re.findall(r"^## \[([^\]]+)\]", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    assert VERSION in headings


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; its output."""
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("source", ["git", "no-git", "build-argument"])
def test_a_built_package_knows_its_revision(tmp_path: Path, source: str) -> None:
    """A wheel built from a git checkout records its commit; without git, ``unknown``
    unless RACKCONNECT_EXPORTER_REVISION (the image's REVISION) says."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "_revision.py")
    shutil.copytree(REPO / "exporter", src / "exporter", ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k != "RACKCONNECT_EXPORTER_REVISION"}
    expected = "unknown"
    if source == "git":
        git(src, "init", "-q")
        git(src, "add", ".")
        git(src, "commit", "-q", "-m", "built")
        expected = git(src, "rev-parse", "HEAD")
    elif source == "build-argument":
        env["RACKCONNECT_EXPORTER_REVISION"] = expected = "0123abcd"
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-index", "--no-cache-dir", "--no-deps",
         "--no-build-isolation", "--disable-pip-version-check", "--wheel-dir", str(wheels),
         str(src)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("rackconnect_exporter-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert not (src / "exporter" / "_revision.py").exists()  # only in the build
    env["PYTHONPATH"] = str(site)
    found = subprocess.run(
        [sys.executable, "-c", "import exporter; print(exporter.__file__, exporter.revision())"],
        cwd="/", env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert found == [str(site / "exporter" / "__init__.py"), expected]


def test_a_tree_without_git_or_build_says_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a tree that is neither built nor a git checkout, the revision is unknown."""
    monkeypatch.setattr(exporter, "__file__", "/nonexistent/exporter/__init__.py")
    exporter.revision.cache_clear()
    try:
        assert exporter.revision() == "unknown"
    finally:
        exporter.revision.cache_clear()
