"""The commands the README and the runbook give, run against the simulator.

Every command there that talks to the exporter or reads its output (``status``, ``wait``,
``check-config``, ``healthcheck``, ``curl``, ``jq``) is collected from the documents and
run as written, with only its placeholders filled in, so that a changed output shape
breaks a test rather than an incident.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter.simulator import Fault, Scenario, Simulator
from tests.helpers import CLEAN_ENV, account_env, free_port, wait_for
from tests.ops_helpers import REPO, binary
from tests.test_lifecycle import config_text

DOCUMENTS = ("README.md", "docs/runbook.md")
COMMANDS = ("rackconnect-exporter", "curl", "jq")
RUNS_ELSEWHERE = {
    # on a cloud server itself, against its in-server API and XenStore
    "rackconnect-exporter wait --local",
    # Rackspace's own API, with a real token
    'curl -s -H "X-Auth-Token: $TOKEN" '
    '"https://$REGION.servers.api.rackspacecloud.com/v2/$TENANT_ID/servers/$SERVER_ID/metadata"'
    " | python3 -m json.tool",
    'curl -s -H "X-Auth-Token: $TOKEN" '
    '"https://$REGION.rackconnect.api.rackspacecloud.com/v3/$TENANT_ID/public_ips?cloud_server_id=$SERVER_ID"'
    " | python3 -m json.tool",
    'curl -s -H "X-Auth-Token: $TOKEN" '
    '"https://$REGION.rackconnect.api.rackspacecloud.com/v3/$TENANT_ID/load_balancer_pools/nodes/details'
    '?cloud_server_id=$SERVER_ID" | python3 -m json.tool',
}


def documented_commands(name: str) -> list[str]:
    """Shell lines of ``sh`` blocks, ``$ `` lines of plain blocks, and inline commands with
    arguments (a bare command name in a table is a reference, not a recipe)."""
    found: list[str] = []
    fence: str | None = None
    pending = ""
    for line in (REPO / name).read_text().splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
            continue
        if fence == "sh":
            pending += line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            found.append(pending)
            pending = ""
        elif fence == "" and line.startswith("$ "):
            found.append(line[2:])
        elif fence is None:
            found += re.findall(r"`((?:curl|rackconnect-exporter) [^`]+)`", line)
    return [
        c
        for c in (re.sub(r"\s+", " ", c.split("  #")[0]).strip() for c in found)
        if c.split(" ")[0] in COMMANDS
        and (len(c.split()) > 2 or not c.startswith("rackconnect-exporter"))
    ]


@dataclass
class Docs:
    """A running exporter polling the simulator, and how to run a documented command."""

    sim: Simulator
    config: Path
    port: int
    server: dict
    env: dict[str, str]

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        """The command in bash as a user types it, placeholders filled in."""
        filled = (
            command.replace("/etc/rackconnect-exporter/config.yml", str(self.config))
            .replace("--config.file FILE", f"--config.file {self.config}")
            .replace("--config.file ...", f"--config.file {self.config}")
            .replace("HOST:10054", f"127.0.0.1:{self.port}")
            .replace("localhost:10054", f"127.0.0.1:{self.port}")
            .replace('"SERVER_ID"', json.dumps(self.server["server_id"]))
            .replace("wait SERVER_ID", "wait $SERVER_ID")
        )
        return subprocess.run(
            ["bash", "-c", filled],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docs]:
    tmp = tmp_path_factory.mktemp("docs")
    sim = Simulator(Scenario.demo(seed=1), step_interval=None)  # the demo fleet, frozen
    sim.start("127.0.0.1", 0)
    config = tmp / "config.yml"
    config.write_text(config_text(sim, {a.name: list(a.regions) for a in sim.accounts}))
    bin_dir = tmp / "bin"  # rackconnect-exporter as installed, from this tree
    bin_dir.mkdir()
    script = bin_dir / "rackconnect-exporter"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m exporter "$@"\n')
    script.chmod(0o755)
    jq = Path(binary("jq")).parent
    acme = next(a for a in sim.accounts if a.name == "acme")
    env = {
        **account_env(sim, "acme", ",".join(acme.regions)),
        "RACKSPACE_ACCOUNT_NAME": "acme",  # as the config file names it
        "PATH": f"{bin_dir}{os.pathsep}{jq}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }
    listed = subprocess.run(
        ["rackconnect-exporter", "status", "--output", "json"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    server = next(s for s in json.loads(listed.stdout)["servers"] if s["ready"])
    port = free_port()
    proc = subprocess.Popen(
        ["rackconnect-exporter", "--config.file", str(config),
         "--web.listen-address", f"127.0.0.1:{port}"],
        env={**CLEAN_ENV, "PATH": env["PATH"], "PYTHONPATH": str(REPO)},
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready")
        yield Docs(sim, config, port, server, {**env, "SERVER_ID": server["server_id"]})
    finally:
        proc.kill()
        proc.wait()
        sim.stop()


def status_header(output: str) -> list[str]:
    return output.splitlines()[0].split()


README_STATUS_EXAMPLE = "rackconnect-exporter status --region DFW --not-ready"


def check_status_example(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    """The output has the columns and the last line the README shows."""
    text = (REPO / "README.md").read_text()
    shown = text.split(f"$ {README_STATUS_EXAMPLE}\n", 1)[1].split("```", 1)[0]
    assert result.returncode == 0, result.stderr
    assert status_header(result.stdout) == status_header(shown)
    summary = r"\d+ server\(s\), \d+ ready, \d+ not ready"
    assert re.fullmatch(summary, shown.splitlines()[-1])
    assert re.fullmatch(summary, result.stdout.splitlines()[-1]), result.stdout
    assert {line.split()[1] for line in result.stdout.splitlines()[1:-1]} <= {"DFW"}


def check_status_table(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert status_header(result.stdout)[:3] == ["ACCOUNT", "REGION", "SERVER_ID"]
    assert docs.server["server_id"] in result.stdout


def check_one_server(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    """The jq recipe prints the server it names, and only that one."""
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == docs.server


def check_failed_regions(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["acme ORD: auth"]  # the fault: 403 from ORD


def check_metrics_of_one_server(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("rackconnect_server_ready{") for line in lines)
    assert all(f'server_id="{docs.server["server_id"]}"' in line for line in lines)


def check_wait(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ready" in result.stdout + result.stderr


def check_config_ok(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def check_healthy(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stdout) == (0, "OK\n"), result.stderr


def check_reload(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stdout) == (0, "Reloaded\n"), result.stderr


def check_v3_failures(docs: Docs, result: subprocess.CompletedProcess[str]) -> None:
    """One line per failed RackConnect v3.0 resource of the demo, with its detail."""
    assert result.returncode == 0, result.stderr
    names = {s["id"]: s["name"] for a in docs.sim.accounts for s in docs.sim.servers(a.name)}
    expected = [
        f"{names[r['server_id']]} {r['id']} {r['status']}: {r['status_detail']}"
        for r in docs.sim.rackconnect_v3()["resources"]
        if r["status"].endswith("FAILED")
    ]
    assert expected
    assert sorted(result.stdout.splitlines()) == sorted(expected)


FAILED_REGIONS = (
    "rackconnect-exporter status --config.file /etc/rackconnect-exporter/config.yml "
    "--output json | jq -r '.regions[] | select(.up | not) | "
    '"\\(.account) \\(.region): \\(.error)"\''
)
CHECKS: dict[str, Callable[[Docs, subprocess.CompletedProcess[str]], None]] = {
    README_STATUS_EXAMPLE: check_status_example,
    'rackconnect-exporter wait "$SERVER_ID" --timeout 30m': check_wait,
    "rackconnect-exporter wait SERVER_ID": check_wait,
    "rackconnect-exporter status --config.file /etc/rackconnect-exporter/config.yml": (
        check_status_table
    ),
    "rackconnect-exporter status --config.file /etc/rackconnect-exporter/config.yml "
    "--output json | jq '.servers[] | select(.server_id == \"SERVER_ID\")'": check_one_server,
    FAILED_REGIONS: check_failed_regions,
    "rackconnect-exporter status --config.file /etc/rackconnect-exporter/config.yml "
    "--output json | jq -r '.servers[] | .name as $n | ((.public_ips, .pool_nodes) // [])[] "
    '| select(.status | endswith("FAILED")) | '
    '"\\($n) \\(.id) \\(.status): \\(.status_detail)"\'': check_v3_failures,
    "curl -s http://localhost:10054/metrics | grep 'server_id=\"SERVER_ID\"'": (
        check_metrics_of_one_server
    ),
    "curl http://HOST:10054/-/healthy": check_healthy,
    "rackconnect-exporter check-config --config.file ...": check_config_ok,
    "rackconnect-exporter check-config --config.file FILE": check_config_ok,
    "curl -X POST http://localhost:10054/-/reload": check_reload,
}


def test_every_documented_command_is_run_here() -> None:
    """A command added to (or changed in) the documents needs its check below."""
    documented = {c for name in DOCUMENTS for c in documented_commands(name)}
    assert documented - RUNS_ELSEWHERE == set(CHECKS), (
        f"not checked: {documented - RUNS_ELSEWHERE - set(CHECKS)}; "
        f"no longer documented: {set(CHECKS) - documented}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", list(CHECKS))
def test_the_documented_command_works(docs: Docs, command: str) -> None:
    fault = None
    if command == FAILED_REGIONS:
        fault = docs.sim.add_fault(Fault("status", api="servers", region="ORD", status=403))
    try:
        result = docs.run(command)
    finally:
        if fault is not None:
            docs.sim.remove_fault(fault)
    CHECKS[command](docs, result)
