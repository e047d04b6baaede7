"""The exporter against the simulated cloud, over real HTTP: polls, failures, recovery."""

from __future__ import annotations

import threading
import time

import pytest

from exporter.model import AUTOMATION_STATUSES, MANAGED_STATUSES
from exporter.simulator import Fault, Scenario, Simulator
from tests.conftest import account_config
from tests.expo_helpers import series, value
from tests.helpers import wait_until

CONTRACT_FAMILIES = {
    "rackconnect_server_info",
    "rackconnect_server_created_timestamp_seconds",
    "rackconnect_automation_status",
    "rackconnect_automation_feature_enabled",
    "rackconnect_managed_operations_status",
    "rackconnect_automation_unprocessable_info",
    "rackconnect_server_status",
    "rackconnect_server_ready",
    # The demo's initech is on RackConnect v3.0 in HKG.
    "rackconnect_v3_public_ip_status",
    "rackconnect_v3_public_ip_info",
    "rackconnect_v3_pool_node_status",
    "rackconnect_v3_status_detail_info",
    "rackconnect_v3_pool_info",
    "rackconnect_v3_up",
    "rackconnect_v3_poll_errors_total",  # beyond the contract's list; in the README
    "rackconnect_account_info",
    "rackconnect_region_info",
    "rackconnect_up",
    "rackconnect_last_successful_poll_timestamp_seconds",
    "rackconnect_poll_duration_seconds",
    "rackconnect_poll_errors_total",
    "rackconnect_api_requests_total",
    "rackconnect_exporter_build_info",
    "rackconnect_config_last_reload_successful",
    "rackconnect_config_last_reload_success_timestamp_seconds",
    # The history histogram starts at 0; its transitions counter waits for a first change.
    "rackconnect_automation_duration_seconds_bucket",
    "rackconnect_automation_duration_seconds_sum",
    "rackconnect_automation_duration_seconds_count",
}


def live_servers(sim: Simulator, account: str) -> list[dict]:
    return [s for s in sim.servers(account) if s["generation"] == "next" and not s["deleted"]]


def test_every_server_of_every_region_is_exported(sim, make_exporter) -> None:
    exporter = make_exporter(*(account_config(sim, a.name) for a in sim.accounts))
    exporter.poll()
    parsed = exporter.scrape()
    names = {name for name, _ in parsed}
    assert {n for n in names if not n.startswith("process_")} == CONTRACT_FAMILIES
    assert "process_resident_memory_bytes" in names  # contract: process_*
    for account in sim.accounts:
        for region in account.regions:
            assert value(parsed, "rackconnect_up", account=account.name, region=region) == 1
        expected = {(s["region"], s["id"], s["name"]) for s in live_servers(sim, account.name)}
        exported = {
            (lbl["region"], lbl["server_id"], lbl["name"])
            for lbl in series(parsed, "rackconnect_server_info", account=account.name)
        }
        assert exported == expected
        assert expected, f"the demo account {account.name} should have servers"
        tenant = account.tenant_id
        flags = {
            "rackconnect": str(account.rackconnect).lower(),
            "managed": str(account.managed).lower(),
        }
        assert (
            value(
                parsed, "rackconnect_account_info", account=account.name, tenant_id=tenant, **flags
            )
            == 1
        )


def test_series_follow_the_metadata(sim, make_exporter) -> None:
    """Each server's state set, features and readiness match its metadata."""
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    parsed = exporter.scrape()
    checked = 0
    for server in live_servers(sim, "acme"):
        ids = {"account": "acme", "region": server["region"], "server_id": server["id"]}
        meta = server["metadata"]
        raw = meta.get("rackconnect_automation_status")
        states = {
            s: value(parsed, "rackconnect_automation_status", status=s, **ids)
            for s in AUTOMATION_STATUSES
        }
        if raw is None:
            assert set(states.values()) == {None}
        else:
            expected = (
                raw.strip().upper() if raw.strip().upper() in AUTOMATION_STATUSES else "UNKNOWN"
            )
            assert states == {s: float(s == expected) for s in AUTOMATION_STATUSES}
        raw_mo = meta.get("rax_service_level_automation")
        mo_states = {
            s: value(parsed, "rackconnect_managed_operations_status", status=s, **ids)
            for s in MANAGED_STATUSES
        }
        if raw_mo is None:
            assert set(mo_states.values()) == {None}
        else:
            assert sum(mo_states.values()) == 1
        ready = (raw or "").strip().upper() == "DEPLOYED" and raw_mo == "Complete"
        assert value(parsed, "rackconnect_server_ready", **ids) == float(ready)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("metadata", "status", "features"),
    [
        (
            {
                "rackconnect_automation_status": "  deployed ",
                "rackconnect_automation_feature_configure_network_stack": "enabled",
                "rackconnect_automation_feature_manage_software_firewall": "DISABLED",
                "rackconnect_automation_feature_provison_public_ip": "ENABLED",
            },
            "DEPLOYED",
            {"configure_network_stack": 1, "manage_software_firewall": 0, "provision_public_ip": 1},
        ),
        (
            {
                "rackconnect_automation_status": "REBUILDING",
                "rackconnect_automation_feature_provision_public_ip": "ENABLED",
            },
            "UNKNOWN",
            {"provision_public_ip": 1},
        ),
    ],
)
def test_normalisation(sim, make_exporter, metadata, status, features) -> None:
    server_id = sim.add_server("globex", "DFW", name="odd-1", metadata=metadata)
    exporter = make_exporter(account_config(sim, "globex"))
    exporter.poll()
    parsed = exporter.scrape()
    ids = {"account": "globex", "region": "DFW", "server_id": server_id}
    for s in AUTOMATION_STATUSES:
        assert value(parsed, "rackconnect_automation_status", status=s, **ids) == float(s == status)
    exported = {
        lbl["feature"]: value(parsed, "rackconnect_automation_feature_enabled", **lbl)
        for lbl in series(parsed, "rackconnect_automation_feature_enabled", **ids)
    }
    assert exported == features


def test_password_credentials(sim, make_exporter) -> None:
    account = next(a for a in sim.accounts if a.name == "globex")
    exporter = make_exporter(account_config(sim, "globex", api_key=None, password=account.password))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="globex", region="DFW") == 1
    bodies = [entry for entry in sim.request_log if entry[1].startswith("/v2.0/tokens")]
    assert len(bodies) == 1


def test_bad_credentials_report_auth_and_leak_nothing(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", api_key="wrong-key-4f1e9c"))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="acme", region="") == 0
    assert (
        value(parsed, "rackconnect_poll_errors_total", account="acme", region="", reason="auth")
        == 1
    )
    assert value(parsed, "rackconnect_api_requests_total", api="identity", code="401") == 1
    assert series(parsed, "rackconnect_server_info") == []
    assert exporter.get("/-/ready").status_code == 200  # the first poll has finished
    log = exporter.log.getvalue()
    assert 'msg="poll failed" account=acme region="" reason=auth' in log
    assert "wrong-key-4f1e9c" not in log
    for path in ("/metrics", "/", "/-/ready"):
        assert "wrong-key-4f1e9c" not in exporter.get(path).text


@pytest.mark.slow
def test_auth_failure_after_success_keeps_regions(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "globex"))
    exporter.poll()
    before = series(exporter.scrape(), "rackconnect_server_info")
    sim.add_fault(Fault(kind="status", api="identity", status=500))
    sim.revoke_tokens("globex")
    exporter.poll()
    parsed = exporter.scrape()
    for region in ("DFW", "SYD"):
        assert value(parsed, "rackconnect_up", account="globex", region=region) == 0
        assert (
            value(parsed, "rackconnect_poll_errors_total", region=region, reason="http_error") == 1
        )
    assert value(parsed, "rackconnect_up", region="") is None
    assert series(parsed, "rackconnect_server_info") == before


def test_expired_token_is_renewed_without_losing_a_poll(sim, make_exporter) -> None:
    # One clock for Identity and the exporter, moved by hand: however slow the first poll
    # is, its token stays valid, and between the polls it expires.
    now = [time.time()]
    sim.clock = lambda: now[0]
    sim.token_lifetime = 1.0
    exporter = make_exporter(account_config(sim, "initech"))
    for poller in exporter.supervisor.pollers:
        poller.tokens.clock = lambda: now[0]
    exporter.poll()
    now[0] += 1.2
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="initech", region="HKG") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="identity", code="200") == 2
    assert value(parsed, "rackconnect_api_requests_total", api="servers", code="401") is None
    assert sum(v for (n, lbl), v in parsed.items() if n == "rackconnect_poll_errors_total") == 0


def test_revoked_token_reauthenticates_once_and_retries(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.poll()
    sim.revoke_tokens("initech")
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="initech", region="HKG") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="servers", code="401") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="identity", code="200") == 2


def test_a_token_that_stays_unauthorized_is_an_auth_failure(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    sim.add_fault(Fault(kind="unauthorized", api="servers"))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="initech", region="HKG") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="HKG", reason="auth") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="servers", code="401") == 2


@pytest.mark.slow
def test_paging_over_three_pages(make_exporter) -> None:
    simulator = Simulator(Scenario.scale(servers=2500, regions=("ORD",)), step_interval=None)
    simulator.start("127.0.0.1", 0)
    try:
        exporter = make_exporter(account_config(simulator, simulator.accounts[0].name))
        exporter.poll()
        parsed = exporter.scrape()
        ids = {lbl["server_id"] for lbl in series(parsed, "rackconnect_server_info")}
        assert len(ids) == 2500
        pages = [e for e in simulator.request_log if "/servers/detail" in e[1]]
        assert len(pages) == 3
        assert "limit=1000" in pages[0][1]
        assert "marker=" in pages[1][1]
    finally:
        simulator.stop()


def test_a_next_link_that_repeats_is_an_error(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.poll()
    # The next poll asks only for changes: make some, so that the answer has pages.
    for server in live_servers(sim, "initech")[:2]:
        sim.set_metadata(server["id"], {"role": "changed"})
    sim.add_fault(Fault(kind="loop_next", api="servers"))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="initech", region="HKG") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="HKG", reason="bad_response") == 1


@pytest.mark.slow
def test_one_region_failing_keeps_its_data_and_spares_the_others(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    before = exporter.scrape()
    dfw_before = series(before, "rackconnect_server_info", region="DFW")
    assert dfw_before
    sim.add_fault(Fault(kind="status", api="servers", region="DFW", status=500))
    changed = live_servers(sim, "acme")[0]
    sim.set_metadata(changed["id"], {"rackconnect_automation_status": "FAILED"})
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="acme", region="DFW") == 0
    assert value(parsed, "rackconnect_up", account="acme", region="ORD") == 1
    assert value(parsed, "rackconnect_up", account="acme", region="IAD") == 1
    assert value(parsed, "rackconnect_poll_errors_total", region="DFW", reason="http_error") == 1
    assert value(parsed, "rackconnect_poll_errors_total", region="ORD", reason="http_error") == 0
    # 500 is retried (urllib3 Retry) before the region is given up
    assert value(parsed, "rackconnect_api_requests_total", region="DFW", code="500") == 3
    assert series(parsed, "rackconnect_server_info", region="DFW") == dfw_before
    assert value(
        parsed, "rackconnect_last_successful_poll_timestamp_seconds", region="DFW"
    ) == value(before, "rackconnect_last_successful_poll_timestamp_seconds", region="DFW")
    log = exporter.log.getvalue()
    assert log.count('msg="poll failed" account=acme region=DFW reason=http_error') == 1
    assert "Traceback" not in log
    sim.clear_faults()
    exporter.poll()
    recovered = exporter.scrape()
    assert value(recovered, "rackconnect_up", account="acme", region="DFW") == 1


def test_transient_error_is_retried_within_the_poll(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    sim.add_fault(Fault(kind="status", api="servers", status=503, count=1))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="initech", region="HKG") == 1
    assert value(parsed, "rackconnect_api_requests_total", region="HKG", code="503") == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(kind="malformed_json", api="servers"), "bad_response"),
        (Fault(kind="missing_key", api="servers"), "bad_response"),
        (Fault(kind="wrong_types", api="servers", variant="servers_object"), "bad_response"),
        (Fault(kind="reset", api="servers"), "connection"),
        (Fault(kind="delay", api="servers", seconds=2.5), "timeout"),
        (Fault(kind="rate_limit", api="servers", retry_after=60), "rate_limited"),
        (Fault(kind="status", api="servers", status=404), "http_error"),
    ],
    ids=lambda p: p if isinstance(p, str) else p.kind,
)
def test_failure_reasons(sim, make_exporter, fault, reason) -> None:
    exporter = make_exporter(account_config(sim, "initech"), timeout=1.0)
    sim.add_fault(fault)
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="initech", region="HKG") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="HKG", reason=reason) == 1
    assert f"region=HKG reason={reason}" in exporter.log.getvalue()


def test_the_ready_rule_follows_roles_and_overrides(sim, make_exporter) -> None:
    plain = sim.add_server("initech", "HKG", name="plain-1", metadata={})
    waiting = sim.add_server("globex", "DFW", name="rc-waiting", metadata={})
    exporter = make_exporter(
        account_config(sim, "initech"),
        account_config(sim, "globex"),
    )
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_server_ready", server_id=plain) == 1  # no RackConnect
    assert value(parsed, "rackconnect_server_ready", server_id=waiting) == 0  # RackConnect role
    overridden = make_exporter(account_config(sim, "globex", rackconnect=False))
    overridden.poll()
    parsed = overridden.scrape()
    assert value(parsed, "rackconnect_server_ready", server_id=waiting) == 1
    assert value(parsed, "rackconnect_account_info", account="globex", rackconnect="false") == 1


def test_deleted_servers_disappear_after_the_next_listing(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.poll()
    victim = live_servers(sim, "initech")[0]["id"]
    assert series(exporter.scrape(), "rackconnect_server_info", server_id=victim)
    sim.delete_server(victim)
    exporter.poll()
    assert series(exporter.scrape(), "rackconnect_server_info", server_id=victim) == []


@pytest.mark.slow
def test_a_scrape_during_a_poll_sees_the_previous_complete_state(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    for server in live_servers(sim, "acme"):
        sim.set_metadata(server["id"], {"rackconnect_automation_status": "FAILED"})
    sim.add_fault(Fault(kind="delay", api="servers", region="IAD", seconds=1.5))
    poll = threading.Thread(target=exporter.poll)
    poll.start()

    def failed_in(parsed: dict, region: str) -> set[float | None]:
        return {
            value(parsed, "rackconnect_automation_status", **lbl)
            for lbl in series(parsed, "rackconnect_automation_status", status="FAILED")
            if lbl["region"] == region
        }

    def published() -> dict | None:
        parsed = exporter.scrape(flush=False)  # what a scraper sees, no flush
        return parsed if failed_in(parsed, "ORD") == {1} else None

    # ORD and DFW are published once done (within the publish delay); IAD shows its last poll
    parsed = wait_until(published, 5, "ORD to be published while IAD is still polled")
    assert poll.is_alive(), "the poll ended before a scrape could see it in progress"
    assert failed_in(parsed, "DFW") == {1}
    assert 0 in failed_in(parsed, "IAD")
    poll.join()
    after = exporter.scrape()
    iad = series(after, "rackconnect_automation_status", region="IAD", status="FAILED")
    assert iad
    assert all(value(after, "rackconnect_automation_status", **lbl) == 1 for lbl in iad)


def test_ready_endpoint_waits_for_the_first_poll(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"), account_config(sim, "globex"))
    response = exporter.get("/-/ready")
    assert response.status_code == 503
    assert response.text == "Not ready: waiting for the first poll of globex, initech\n"
    exporter.poll("initech")
    assert exporter.get("/-/ready").status_code == 503
    exporter.poll("globex")
    assert exporter.get("/-/ready").status_code == 200
