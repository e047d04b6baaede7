"""The on-server side: Managed Operations from XenStore and the completion file, remembered
across a cleared /tmp, the agent without SIGHUP, and ``wait --local``."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from exporter.agent.managedops import ManagedOps
from exporter.agent.runtime import Agent
from exporter.agent.xenstore import xenstore_read
from exporter.commands.wait import LocalWaiter
from exporter.simulator.scenario import rc_metadata
from exporter.store import Store
from tests.expo_helpers import samples, value
from tests.helpers import CLEAN_ENV, free_port, wait_for
from tests.test_agent import POLL_TIMEOUT, TRICKLE, within


def fake_xenstore(tmp_path: Path, values: dict[str, str]) -> Path:
    """A ``xenstore-read`` on PATH that answers from ``values`` (JSON-quoted, as upstream)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "xenstore-read"
    cases = "".join(f"  '{k}') echo '{v}' ;;\n" for k, v in values.items())
    script.write_text(f'#!/bin/sh\ncase "$1" in\n{cases}  *) exit 1 ;;\nesac\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_api_404_and_completion_file_report_complete_and_it_is_remembered(sim, tmp_path) -> None:
    done = tmp_path / "rs_managed_cloud_automation_complete"
    done.touch()
    state = tmp_path / "state" / "managed-complete"
    store = Store(60.0)
    agent = Agent(
        store,
        base_url=sim.rackconnect_url("no-such-server"),  # the API answers 404
        region="ORD",
        server_id="local-1",
        server_name="web",
        managed=True,
        completion_file=str(done),
        state_file=str(state),
        xenstore=lambda key: None,
        timeout=5.0,
    )
    try:
        agent.poll()
        parsed = samples(store.current.body())
        assert value(parsed, "rackconnect_managed_operations_status", status="Complete") == 1
        assert value(parsed, "rackconnect_up", region="ORD") == 1
        assert state.exists()
        done.unlink()  # /tmp cleared at reboot
        agent.poll()
        parsed = samples(store.current.body())
        assert value(parsed, "rackconnect_managed_operations_status", status="Complete") == 1
    finally:
        agent.close()


def test_xenstore_is_a_managed_source(tmp_path, monkeypatch) -> None:
    key = "vm-data/user-metadata/rax_service_level_automation"
    bin_dir = fake_xenstore(tmp_path, {key: '"In Progress"'})
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    ops = ManagedOps(str(tmp_path / "absent"), None, xenstore_read)
    assert ops.status() == "In Progress"
    fake_xenstore(tmp_path, {key: '"Complete"'})
    assert ops.status() == "Complete"
    assert xenstore_read(key, command=str(tmp_path / "missing-command")) is None


@pytest.mark.slow
def test_agent_without_sighup_serves_metrics(sim, tmp_path) -> None:
    sid = sim.add_server("acme", "ORD", "win-01", rc_metadata("DEPLOYED"))
    port = free_port()
    code = (
        "import signal, sys\n"
        "del signal.SIGHUP\n"  # as on Windows
        "from exporter.cli import main\n"
        "sys.argv[0] = 'rackconnect-exporter'\n"
        "main()\n"
    )
    args = [
        "agent",
        "--rackconnect.url",
        sim.rackconnect_url(sid),
        "--rackconnect.region",
        "ORD",
        "--server.id",
        sid,
        "--managed",
        "false",
        "--managed.state-file",
        "",
        "--web.listen-address",
        f"127.0.0.1:{port}",
    ]
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/-/ready")
        parsed = samples(requests.get(base + "/metrics", timeout=5).content)
        assert value(parsed, "rackconnect_server_ready", server_id=sid) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("output", ["text", "json"])
def test_wait_local_returns_0_once_deployed_and_the_file_appears(sim, tmp_path, output) -> None:
    sid = sim.add_server("acme", "ORD", "cfg-01", rc_metadata("DEPLOYING"))
    done = tmp_path / "complete"
    clock = Clock()
    steps = {
        2: lambda: sim.set_metadata(sid, rc_metadata("DEPLOYED")),
        4: done.touch,
    }
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        if len(slept) in steps:
            steps[len(slept)]()

    out = io.StringIO()
    waiter = LocalWaiter(
        base_url=sim.rackconnect_url(sid),
        region="ORD",
        rackconnect=True,
        managed=True,
        managed_ops=ManagedOps(str(done), None, lambda key: None),
        output=output,
        out=out,
        err=io.StringIO(),
        sleep=sleep,
        clock=clock,
        wall=clock,
    )
    assert waiter.run() == 0
    text = out.getvalue()
    assert "rackconnect=DEPLOYED managed=Complete ready=yes" in text
    assert len(slept) == 4


def test_wait_local_cuts_off_a_trickling_in_server_api(sim, tmp_path) -> None:
    sid = sim.add_server("acme", "ORD", "slow-01", rc_metadata("DEPLOYING"))
    sim.add_fault(TRICKLE)
    out = io.StringIO()
    waiter = LocalWaiter(
        base_url=sim.rackconnect_url(sid),
        region="ORD",
        rackconnect=True,
        managed=False,
        managed_ops=ManagedOps(str(tmp_path / "absent"), None, lambda key: None),
        output="json",
        request_timeout=POLL_TIMEOUT,
        timeout=0.1,  # the first poll is the last
        out=out,
        err=io.StringIO(),
    )
    codes: list[int] = []
    took = within(POLL_TIMEOUT + 1.0, lambda: codes.append(waiter.run()))
    print(f"\ntrickling in-server API: wait --local gave up after {took:.2f}s")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    (retry,) = [e for e in events if e["event"] == "retry"]
    timed_out = r"automation_status: (not answered in time|body not received within the timeout)"
    assert re.search(timed_out, retry["message"])
    assert codes == [2]
    assert events[-1]["outcome"] == "timeout"


@pytest.mark.slow
def test_wait_local_exit_codes_from_the_command_line(sim, tmp_path) -> None:
    failed = sim.add_server("acme", "ORD", "bad", rc_metadata("FAILED"))
    common = ["--managed", "false", "--managed.state-file", "", "--rackconnect.region", "ORD"]

    def wait_local(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "exporter", "wait", "--local", *common, *args],
            env=CLEAN_ENV,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert wait_local("--rackconnect.url", sim.rackconnect_url(failed)).returncode == 1
    slow = sim.add_server("acme", "ORD", "slow", rc_metadata("DEPLOYING"))
    timed_out = wait_local(
        "--rackconnect.url", sim.rackconnect_url(slow), "--timeout", "1s", "--interval", "200ms"
    )
    assert timed_out.returncode == 2
    both = subprocess.run(
        [sys.executable, "-m", "exporter", "wait", "--local", "some-id"],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert both.returncode == 3


AGENT_UNIT = (
    Path(__file__).parent.parent / "deploy" / "systemd" / "rackconnect-exporter-agent.service"
)


def test_agent_unit_keeps_tmp_and_the_state_directory(tmp_path) -> None:
    text = AGENT_UNIT.read_text()
    assert "PrivateTmp=yes" not in text  # the completion file is in the real /tmp
    assert "StateDirectory=rackconnect-exporter" in text
    assert "--managed.state-file /var/lib/rackconnect-exporter/managed-complete" in text
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / AGENT_UNIT.name
    unit.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", text, flags=re.M))
    result = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
