"""First-generation Cloud Servers (v1.0) through Identity v2.0's catalog or Identity v1.0."""

from __future__ import annotations

import time

from exporter.simulator import Fault
from exporter.simulator.scenario import rc_metadata
from tests.conftest import account_config
from tests.expo_helpers import series, value


def first_gen(sim, account: str = "acme") -> list[dict]:
    return [s for s in sim.servers(account) if s["generation"] == "first" and not s["deleted"]]


def test_first_gen_servers_show_up_with_region_global(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", generations=("next", "first")))
    exporter.poll()
    parsed = exporter.scrape()
    legacy = first_gen(sim)
    assert len(legacy) == 3
    exported = {
        (lbl["server_id"], lbl["name"])
        for lbl in series(parsed, "rackconnect_server_info", region="GLOBAL", generation="first")
    }
    assert exported == {(s["id"], s["name"]) for s in legacy}
    assert all(sid.isdigit() for sid, _ in exported)  # integer ids, as strings
    # Next-generation regions are still polled alongside.
    assert value(parsed, "rackconnect_up", account="acme", region="ORD") == 1
    assert value(parsed, "rackconnect_up", account="acme", region="GLOBAL") == 1
    assert series(parsed, "rackconnect_server_created_timestamp_seconds", region="GLOBAL") == []
    assert value(parsed, "rackconnect_api_requests_total", region="GLOBAL", api="servers") == 1
    by_name = {s["name"]: s["id"] for s in legacy}
    deployed, deploying = by_name["legacy-web-01"], by_name["legacy-db-01"]
    status = value(parsed, "rackconnect_automation_status", server_id=deployed, status="DEPLOYED")
    assert status == 1
    # acme has Managed Operations, but first-gen servers never report it: ready anyway.
    assert value(parsed, "rackconnect_server_ready", server_id=deployed) == 1
    assert value(parsed, "rackconnect_server_ready", server_id=deploying) == 0
    assert series(parsed, "rackconnect_managed_operations_status", region="GLOBAL") == []
    assert (
        value(
            parsed,
            "rackconnect_automation_feature_enabled",
            server_id=deployed,
            feature="provision_public_ip",
        )
        == 1
    )


def test_default_generations_do_not_poll_first_gen(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    parsed = exporter.scrape()
    assert series(parsed, "rackconnect_up", region="GLOBAL") == []
    assert not any("/first/servers/" in entry[1] for entry in sim.request_log)


def test_first_gen_paging_over_two_pages(sim, make_exporter) -> None:
    started = time.monotonic()
    for i in range(1100):
        sim.add_server(
            "acme", "GLOBAL", f"bulk-{i:04d}", rc_metadata("DEPLOYED"), generation="first"
        )
    assert time.monotonic() - started < 20
    exporter = make_exporter(account_config(sim, "acme", generations=("first",)))
    exporter.poll()
    parsed = exporter.scrape()
    ids = {lbl["server_id"] for lbl in series(parsed, "rackconnect_server_info")}
    assert ids == {s["id"] for s in first_gen(sim)}
    assert len(ids) == 1103
    pages = [e[1] for e in sim.request_log if "/first/servers/v1.0/" in e[1]]
    assert len(pages) == 2
    assert "limit=1000" in pages[0]
    assert "offset=0" in pages[0]
    assert "offset=1000" in pages[1]
    # Only first-gen was asked for: no next-gen region is polled.
    assert {lbl["region"] for lbl in series(parsed, "rackconnect_up")} == {"GLOBAL"}


def test_identity_v1_reaches_first_gen(sim, make_exporter) -> None:
    exporter = make_exporter(
        account_config(sim, "acme", identity_url=sim.auth_v1_url, generations=("first",))
    )
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="acme", region="GLOBAL") == 1
    assert len(series(parsed, "rackconnect_server_info", generation="first")) == 3
    assert value(parsed, "rackconnect_api_requests_total", api="identity", code="204") == 1
    auth = [e for e in sim.request_log if e[1] == "/v1.0"]
    assert [(e[0], e[2]) for e in auth] == [("GET", 204)]
    # v1.0 has no roles: the account is taken to have RackConnect and no Managed Operations.
    assert (
        value(
            parsed,
            "rackconnect_account_info",
            account="acme",
            tenant_id="100001",
            rackconnect="true",
            managed="false",
        )
        == 1
    )


def test_identity_v1_bad_key_is_an_auth_failure(sim, make_exporter) -> None:
    exporter = make_exporter(
        account_config(
            sim, "acme", identity_url=sim.auth_v1_url, api_key="wrong", generations=("first",)
        )
    )
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="acme", region="") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="", reason="auth") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="identity", code="401") == 1
    assert "wrong" not in exporter.log.getvalue()


def test_expired_v1_token_is_renewed_once(sim, make_exporter) -> None:
    exporter = make_exporter(
        account_config(sim, "acme", identity_url=sim.auth_v1_url, generations=("first",))
    )
    exporter.poll()
    sim.revoke_tokens("acme")
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="acme", region="GLOBAL") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="servers", code="401") == 1
    assert value(parsed, "rackconnect_api_requests_total", api="identity", code="204") == 2


def test_account_without_first_gen_reports_global_down(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "globex", generations=("next", "first")))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="globex", region="DFW") == 1
    assert value(parsed, "rackconnect_up", account="globex", region="GLOBAL") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="GLOBAL", reason="auth") == 1


def test_first_gen_fault_spares_next_gen(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", generations=("next", "first")))
    exporter.poll()
    sim.add_fault(Fault(kind="status", api="servers_v1", status=404))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="acme", region="GLOBAL") == 0
    assert value(parsed, "rackconnect_up", account="acme", region="ORD") == 1
    # The last good first-gen series stay exposed.
    assert len(series(parsed, "rackconnect_server_info", region="GLOBAL")) == 3
