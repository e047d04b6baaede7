"""``status``: one poll of the configured accounts, as a table or JSON, with filters."""

from __future__ import annotations

import io
import json

import pytest

from exporter.commands.status import COLUMNS
from exporter.commands.status import poll_and_print as status
from exporter.config import AccountConfig, Config
from exporter.simulator import Fault
from exporter.simulator.scenario import rc_metadata
from tests.conftest import account_config
from tests.helpers import run


def live(sim, account: str) -> list[dict]:
    return [s for s in sim.servers(account) if not s["deleted"] and s["generation"] == "next"]


def status_of(sim, *accounts, **options) -> tuple[int, str, str]:
    config = Config(
        tuple(a if not isinstance(a, str) else account_config(sim, a) for a in accounts)
    )
    out, err = io.StringIO(), io.StringIO()
    code = status(config, timeout=5, out=out, err=err, **options)
    return code, out.getvalue(), err.getvalue()


def test_table_lists_every_server(sim) -> None:
    code, out, err = status_of(sim, "acme", "globex")
    assert (code, err) == (0, "")
    header, *body, summary = out.splitlines()
    # The demo fleet has UNPROCESSABLE servers, so the reason column is shown.
    assert header.split() == [*COLUMNS, "REASON"]
    expected = live(sim, "acme") + live(sim, "globex")
    assert len(body) == len(expected)
    ids = [line.split()[2] for line in body]
    assert sorted(ids) == sorted(s["id"] for s in expected)
    # Sorted by account, region, name.
    keys = [(line.split()[0], line.split()[1], line.split()[3]) for line in body]
    assert keys == sorted(keys)
    failed = next(
        s
        for s in live(sim, "globex")
        if s["metadata"].get("rackconnect_automation_status") == "FAILED"
    )
    row = next(line for line in body if failed["id"] in line)
    assert row.split() == [
        "globex",
        "DFW",
        failed["id"],
        failed["name"],
        "ACTIVE",
        "FAILED",
        "network,firewall,public_ip",
        "-",
        "no",
        "-",
    ]
    ready = sum(line.split()[8] == "yes" for line in body)
    assert summary == f"{len(body)} server(s), {ready} ready, {len(body) - ready} not ready"
    assert 0 < ready < len(body)


def test_json_with_filters(sim) -> None:
    code, out, _ = status_of(sim, "acme", output="json", regions=["dfw"], not_ready=True)
    assert code == 0
    doc = json.loads(out)
    servers = doc["servers"]
    assert servers
    assert {s["region"] for s in servers} == {"DFW"}
    assert not any(s["ready"] for s in servers)
    unprocessable = next(s for s in servers if s["rackconnect_status"] == "UNPROCESSABLE")
    assert unprocessable["unprocessable_reason"].startswith("Cloud server region DFW")
    assert unprocessable["features"] == {
        "configure_network_stack": True,
        "manage_software_firewall": True,
        "provision_public_ip": True,
    }
    expected = [
        s
        for s in live(sim, "acme")
        if s["region"] == "DFW"
        and (
            s["metadata"].get("rackconnect_automation_status", "").strip() != "DEPLOYED"
            or s["metadata"].get("rax_service_level_automation") != "Complete"
        )
    ]
    assert sorted(s["server_id"] for s in servers) == sorted(s["id"] for s in expected)
    assert {(r["account"], r["region"], r["up"]) for r in doc["regions"]} == {
        ("acme", "DFW", True),
        ("acme", "IAD", True),
        ("acme", "ORD", True),
    }


def test_server_filter_by_id_or_name(sim) -> None:
    sid = sim.add_server("acme", "IAD", "build-42", rc_metadata("DEPLOYING"))
    for wanted in (sid, "build-42"):
        code, out, _ = status_of(sim, "acme", output="json", server=wanted)
        assert code == 0
        servers = json.loads(out)["servers"]
        assert [
            (s["server_id"], s["name"], s["rackconnect_status"], s["managed_status"])
            for s in servers
        ] == [(sid, "build-42", "DEPLOYING", None)]


def test_first_gen_rows(sim) -> None:
    code, out, _ = status_of(
        sim, account_config(sim, "acme", generations=("next", "first")), regions=["GLOBAL"]
    )
    assert code == 0
    _, *body, _ = out.splitlines()
    assert sorted(line.split()[3] for line in body) == [
        "legacy-app-01",
        "legacy-db-01",
        "legacy-web-01",
    ]
    web = next(line for line in body if "legacy-web-01" in line)
    assert web.split()[4:] == ["ACTIVE", "DEPLOYED", "network,firewall,public_ip", "-", "yes"]


def test_a_failed_region_is_reported_and_the_rest_printed(sim) -> None:
    sim.add_fault(Fault(kind="status", api="servers", region="ORD", status=404))
    code, out, err = status_of(sim, "acme")
    assert code == 1  # a script checking the exit code must not read "all is well"
    assert err == "status: acme/ORD: poll failed (http_error)\n"
    assert " DFW " in out
    assert " ORD " not in out


def test_every_account_failing_to_authenticate_exits_3(sim) -> None:
    code, out, err = status_of(
        sim,
        account_config(sim, "acme", api_key="bad"),
        account_config(sim, "globex", api_key="bad"),
    )
    assert code == 3
    assert out == ""
    assert err == (
        "status: acme: poll failed (auth)\nstatus: globex: poll failed (auth)\n"
        "status: every account failed to authenticate; check the credentials\n"
    )


def test_one_account_failing_is_not_fatal(sim) -> None:
    code, out, err = status_of(sim, account_config(sim, "acme", api_key="bad"), "initech")
    assert code == 1  # the others are printed, but acme's servers are missing
    assert err == "status: acme: poll failed (auth)\n"
    assert out.count("initech") == len(live(sim, "initech"))


@pytest.mark.slow
def test_unreachable_cloud_exits_1() -> None:
    config = Config(
        (AccountConfig("nobody", "nobody", api_key="k", identity_url="http://127.0.0.1:9/v2.0/"),)
    )
    out, err = io.StringIO(), io.StringIO()
    assert status(config, timeout=2, out=out, err=err) == 1
    assert err.getvalue().endswith("status: no account could be reached\n")


@pytest.mark.slow
def test_status_from_the_command_line(sim, tmp_path) -> None:
    acme = next(a for a in sim.accounts if a.name == "acme")
    config = tmp_path / "config.yml"
    config.write_text(
        "accounts:\n"
        f"  - name: acme\n    username: {acme.username}\n    api_key: {acme.api_key}\n"
        f"    identity_url: {sim.identity_url}\n    generations: [next, first]\n"
    )
    done = run("status", "--config.file", str(config), "--region", "ORD,GLOBAL", "--not-ready")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == list(COLUMNS)
    assert {line.split()[1] for line in lines[1:-1]} == {"ORD", "GLOBAL"}
    assert all(line.split()[-1] == "no" for line in lines[1:-1])
    as_json = run("status", "--config.file", str(config), "--output", "json")
    assert as_json.returncode == 0
    assert {s["region"] for s in json.loads(as_json.stdout)["servers"]} == {
        "ORD",
        "DFW",
        "IAD",
        "GLOBAL",
    }
    bad = run("status", "--config.file", str(tmp_path / "missing.yml"))
    assert bad.returncode == 3
    assert ' level=error msg="config error" problem=' in bad.stderr
