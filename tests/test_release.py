"""Release hygiene: one version, from the package metadata; LICENSE and CHANGELOG present."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib

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
