"""The process lifecycle: SIGHUP reloads the configuration, SIGTERM stops within 5 seconds."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from exporter.simulator import Simulator
from tests.expo_helpers import promtool_check, samples, series, value
from tests.helpers import CLEAN_ENV, assert_stops_on_sigterm, free_port, wait_for, wait_until

pytestmark = pytest.mark.slow


def config_text(sim: Simulator, accounts: dict[str, list[str]]) -> str:
    """A config file (JSON is YAML) with these accounts and regions."""
    by_name = {a.name: a for a in sim.accounts}
    return json.dumps(
        {
            "accounts": [
                {
                    "name": name,
                    "username": by_name[name].username,
                    "api_key": by_name[name].api_key,
                    "identity_url": sim.identity_url,
                    "regions": regions,
                }
                for name, regions in accounts.items()
            ]
        }
    )


def wait_metrics(url: str, check: Callable[[dict], bool], timeout: float = 20) -> dict:
    def changed() -> dict | None:
        parsed = samples(requests.get(url, timeout=5).content)
        return parsed if check(parsed) else None

    return wait_until(changed, timeout, "the metrics to change as expected", interval=0.1)


def regions_of(parsed: dict) -> set[tuple[str, str]]:
    return {(lbl["account"], lbl["region"]) for lbl in series(parsed, "rackconnect_up")}


def test_sighup_reloads_accounts_and_a_bad_file_keeps_the_old_one(sim, tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(config_text(sim, {"acme": ["ORD", "DFW"], "globex": ["DFW"]}))
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--config.file",
            str(path),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--poll.interval",
            "500ms",
        ],
        env=CLEAN_ENV,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready")
        first = wait_metrics(
            url, lambda p: regions_of(p) == {("acme", "ORD"), ("acme", "DFW"), ("globex", "DFW")}
        )
        promtool_check(requests.get(url, timeout=5).content)
        assert value(first, "rackconnect_config_last_reload_successful") == 1
        loaded = value(first, "rackconnect_config_last_reload_success_timestamp_seconds")
        assert loaded is not None

        # globex leaves, initech arrives, acme loses a region
        path.write_text(config_text(sim, {"acme": ["ORD"], "initech": ["HKG"]}))
        proc.send_signal(signal.SIGHUP)
        after = wait_metrics(url, lambda p: regions_of(p) == {("acme", "ORD"), ("initech", "HKG")})
        assert series(after, "rackconnect_server_info", account="globex") == []
        assert series(after, "rackconnect_server_info", account="acme", region="DFW") == []
        assert series(after, "rackconnect_server_info", account="initech")
        assert series(after, "rackconnect_poll_errors_total", account="globex") == []
        assert value(after, "rackconnect_config_last_reload_successful") == 1
        reloaded = value(after, "rackconnect_config_last_reload_success_timestamp_seconds")
        assert reloaded is not None
        assert reloaded > loaded

        # a broken file: the running configuration stays, and the metric says so
        path.write_text("accounts:\n  - name: x\n    regoins: [ORD]\n")
        proc.send_signal(signal.SIGHUP)
        failed = wait_metrics(
            url, lambda p: value(p, "rackconnect_config_last_reload_successful") == 0
        )
        assert value(failed, "rackconnect_config_last_reload_success_timestamp_seconds") == (
            reloaded
        )
        assert regions_of(failed) == {("acme", "ORD"), ("initech", "HKG")}
        time.sleep(1.2)  # polls go on with the old configuration
        still = samples(requests.get(url, timeout=5).content)
        assert value(still, "rackconnect_up", account="initech", region="HKG") == 1
        assert requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).status_code == 200

        assert_stops_on_sigterm(proc)
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert 'msg="signal received" signal=SIGHUP' in stderr
    assert 'msg="config reloaded" added=initech removed=globex changed=acme' in stderr
    assert 'msg="config reload failed, keeping the running configuration"' in stderr
    assert "accounts[0].regoins: unknown key" in stderr
    assert 'msg="signal received" signal=SIGTERM' in stderr
    assert 'msg="shutting down"' in stderr
    assert "Traceback" not in stderr
    for account in sim.accounts:
        assert account.api_key not in stderr
