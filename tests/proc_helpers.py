"""Helpers for tests that run the exporter as a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from tests.ops_helpers import free_port

__all__ = ["CLEAN_ENV", "account_env", "assert_stops_on_sigterm", "free_port", "run", "wait_for"]

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RACKSPACE_")}


def account_env(sim, name: str, regions: str) -> dict[str, str]:
    """The environment of a process polling one simulator account in ``regions``."""
    account = next(a for a in sim.accounts if a.name == name)
    return {
        **CLEAN_ENV,
        "RACKSPACE_USERNAME": account.username,
        "RACKSPACE_API_KEY": account.api_key,
        "RACKSPACE_IDENTITY_URL": sim.identity_url,
        "RACKSPACE_REGIONS": regions,
    }


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m exporter ARGS`` without the caller's RACKSPACE_* variables."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        env={**CLEAN_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for(url: str, status: int = 200, timeout: float = 20) -> requests.Response:
    """GET ``url`` until it answers ``status``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == status:
                return response
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer {status} within {timeout}s")
        time.sleep(0.1)


def assert_stops_on_sigterm(proc: subprocess.Popen) -> None:
    """Send SIGTERM: the process must exit 0 within 5 seconds."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
