"""The command line, run as a user would: exit codes, messages, signals, the demo."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from exporter import __version__
from exporter.commands.lifecycle import Signals
from tests.expo_helpers import samples
from tests.helpers import (
    CLEAN_ENV,
    account_env,
    assert_stops_on_sigterm,
    free_port,
    run,
    wait_for,
    wait_until,
)

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "config"


def test_version_and_help() -> None:
    assert run("--version").stdout.strip() == f"rackconnect-exporter {__version__}"
    helped = run("--help")
    assert helped.returncode == 0
    for command in ("serve", "demo", "simulate", "check-config"):
        assert command in helped.stdout
    serve_help = run("serve", "--help").stdout
    for flag in (
        "--web.listen-address",
        "--web.telemetry-path",
        "--config.file",
        "--poll.interval",
        "--poll.timeout",
        "--log.level",
        "--log.format",
    ):
        assert flag in serve_help


def test_check_config_from_environment() -> None:
    ok = run("check-config", env={"RACKSPACE_USERNAME": "u", "RACKSPACE_API_KEY": "k"})
    assert (ok.returncode, ok.stdout) == (0, "configuration OK: 1 account(s): u\n")
    missing = run("check-config")
    assert missing.returncode == 3
    assert missing.stderr.endswith(
        ' level=error msg="config error" '
        'problem="RACKSPACE_USERNAME: not set (or give --config.file)"\n'
    )


def test_check_config_file() -> None:
    good = run("check-config", "--config.file", str(FIXTURES / "good.yml"))
    assert good.returncode == 0
    assert "2 account(s): production, staging-user" in good.stdout
    assert "prod-api-key" not in good.stdout + good.stderr
    bad = run("check-config", "--config.file", str(FIXTURES / "bad_region.yml"))
    assert bad.returncode == 3
    assert "accounts[0].regions: unknown region 'XYZ'" in bad.stderr


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--poll.interval", "5x", "argument --poll.interval: invalid duration '5x'"),
        ("--poll.timeout", "0s", "argument --poll.timeout: duration must be greater than zero"),
        ("--web.listen-address", "nope", "argument --web.listen-address: invalid listen address"),
        ("--log.level", "loud", "argument --log.level: invalid choice: 'loud'"),
    ],
)
def test_bad_flags_exit_3_naming_the_flag(flag: str, value: str, message: str) -> None:
    result = run(flag, value)
    assert result.returncode == 3
    assert message in result.stderr


@pytest.mark.parametrize(
    "flags",
    [
        ("--config.file", "x.yml"),
        ("--shard.index", "1"),
        ("--shard.total", "2"),
    ],
)
def test_demo_refuses_flags_it_would_ignore(flags: tuple[str, ...]) -> None:
    result = run("demo", *flags)
    assert result.returncode == 3
    assert f"unrecognized arguments: {' '.join(flags)}" in result.stderr


def test_check_config_checks_the_web_config_too(tmp_path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: a\n  key_fiel: b\n")
    env = {"RACKSPACE_USERNAME": "u", "RACKSPACE_API_KEY": "k"}
    bad = run("check-config", "--web.config.file", str(web), env=env)
    assert bad.returncode == 3
    assert f"{web}:3: tls_server_config.key_fiel: unknown key" in bad.stderr
    web.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    good = run("check-config", "--web.config.file", str(web), env=env)
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines()[-1] == f"web configuration OK: {web}"


@pytest.mark.parametrize(
    "args",
    [
        ("check-config",),  # no credentials
        ("serve", "--config.file", "/nonexistent/config.yml"),
        ("status", "--config.file", str(FIXTURES / "bad_region.yml")),
        ("serve", "--web.config.file", "/nonexistent/web.yml"),
        ("serve", "--server.metadata-label", "bad-label=x"),
        ("serve", "--shard.index", "nope"),
        ("serve", "--shard.index", "3", "--shard.total", "2"),
        ("demo", "--config.file", "x.yml"),
        ("agent", "--rackconnect.url", ""),
    ],
)
def test_start_up_errors_follow_log_format_json(args: tuple[str, ...]) -> None:
    env = {"RACKSPACE_USERNAME": "u", "RACKSPACE_API_KEY": "k"} if args[0] == "serve" else {}
    result = run(*args, "--log.format=json", env=env)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.splitlines()
    assert lines
    for line in lines:
        assert json.loads(line)["level"] == "error", line


def test_serve_until_sigterm(sim) -> None:
    account = next(a for a in sim.accounts if a.name == "globex")
    port = free_port()
    env = account_env(sim, "globex", "DFW")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.format",
            "json",
            "--log.level",
            "debug",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready")
        parsed = samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).content)
        regions = {dict(lbl)["region"] for (n, lbl) in parsed if n == "rackconnect_server_info"}
        assert regions == {"DFW"}
        assert_stops_on_sigterm(proc)
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert '"msg": "shutting down"' in stderr
    assert '"signal": "SIGTERM"' in stderr
    assert account.api_key not in stderr


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            "--web.listen-address",
            f"127.0.0.1:{port}",
            env={
                "RACKSPACE_USERNAME": "u",
                "RACKSPACE_API_KEY": "k",
                "RACKSPACE_IDENTITY_URL": "http://127.0.0.1:9/v2.0/",
            },
        )
    assert result.returncode == 1
    assert f'msg="cannot listen" address=127.0.0.1:{port}' in result.stderr


def test_demo_shows_a_changing_fleet() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--simulator.listen-address",
            "127.0.0.1:0",
            "--poll.interval",
            "300ms",
            "--simulator.step-interval",
            "100ms",
        ],
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        for _ in range(20):
            line = proc.stdout.readline()
            match = re.search(r"metrics\s+(http://\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "the demo did not print its metrics URL"
        base = url.rsplit("/", 1)[0]
        wait_for(base + "/-/ready")
        first = samples(requests.get(url, timeout=5).content)
        info = [dict(lbl) for (n, lbl) in first if n == "rackconnect_server_info"]
        assert {lbl["account"] for lbl in info} == {"acme", "globex", "initech"}
        first_gen = {
            (lbl["account"], lbl["region"]) for lbl in info if lbl["generation"] == "first"
        }
        assert first_gen == {("acme", "GLOBAL")}

        def states(parsed: dict) -> dict:
            return {k: v for k, v in parsed.items() if k[0] == "rackconnect_automation_status"}

        wait_until(
            lambda: states(samples(requests.get(url, timeout=5).content)) != states(first),
            30,
            "the demo fleet to change",
            interval=0.5,
        )
        assert "Not ready" in requests.get(base + "/", timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_command_line_does_not_load_the_simulator() -> None:
    code = "import exporter.cli, sys; print([m for m in sys.modules if 'simulator' in m])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_signals_are_handled_where_sighup_does_not_exist(monkeypatch) -> None:
    hup = signal.getsignal(signal.SIGHUP)
    monkeypatch.delattr(signal, "SIGHUP")  # as on Windows
    with Signals() as signals:
        signal.raise_signal(signal.SIGTERM)
        assert signals.stop.wait(5)
    assert signal.getsignal(signal.Signals(1)) is hup
    assert signal.getsignal(signal.SIGTERM) is not signals._handle


def test_sighup_reloads_and_sigterm_stops_the_wait() -> None:
    reloads: list[int] = []
    with Signals() as signals:
        signal.raise_signal(signal.SIGHUP)
        signals.wait(lambda: (reloads.append(1), signal.raise_signal(signal.SIGTERM)))
    assert reloads == [1]
    assert signals.stop.is_set()


def test_a_command_given_a_stop_event_installs_no_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = threading.Event()
    with Signals(stop) as signals:
        assert signal.getsignal(signal.SIGTERM) is before
        assert signals.stop is stop
