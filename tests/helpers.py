"""Helpers shared by the tests: waiting, free ports, running the command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("RACKSPACE_")}
STOP_POLL = 0.005  # seconds: how soon a test's HTTP server notices it is shut down


def wait_until(
    check: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "the condition",
    interval: float = 0.05,
) -> Any:
    """Call ``check`` until it returns something truthy; fail with ``what`` after ``timeout``.

    An OSError, ValueError or KeyError from ``check`` counts as not yet.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError, KeyError) as exc:
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def wait_for(url: str, status: int = 200, timeout: float = 20) -> requests.Response:
    """GET ``url`` until it answers ``status``; fail after ``timeout`` seconds."""

    def answered() -> requests.Response | None:
        try:
            response = requests.get(url, timeout=2)
        except requests.ConnectionError:
            return None
        return response if response.status_code == status else None

    return wait_until(answered, timeout, f"{url} to answer {status}", interval=0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def assert_stops_on_sigterm(proc: subprocess.Popen) -> None:
    """Send SIGTERM: the process must exit 0 within 5 seconds."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
