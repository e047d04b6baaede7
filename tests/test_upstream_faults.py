"""Upstreams that trickle, lie about time, drop queries or send huge bodies, over real HTTP."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from exporter.polling.incremental import OVERLAP, RegionSync
from exporter.rackspace import deadline
from exporter.rackspace.cloudservers import Listing
from exporter.simulator import Fault
from tests.conftest import account_config
from tests.expo_helpers import series, value
from tests.helpers import free_port
from tests.test_incremental import listings


def region_servers(sim, account: str, region: str) -> list[dict]:
    return [s for s in sim.servers(account, region) if not s["deleted"]]


@pytest.mark.slow
def test_a_trickling_body_fails_the_poll_with_timeout(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", regions=("ORD",)), timeout=1.0)
    sim.add_fault(Fault("trickle", api="servers", region="ORD", rate=50.0))
    started = time.monotonic()
    exporter.poll()
    took = time.monotonic() - started
    print(f"\ntrickling body: the poll ended after {took:.2f}s (poll.timeout 1s)")
    assert took < 2 * 1.0 + 1.0  # the deadline, plus authentication
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account="acme", region="ORD") == 0
    errors = value(parsed, "rackconnect_poll_errors_total", region="ORD", reason="timeout")
    assert errors == 1


def test_stopping_cuts_off_a_poll_in_flight(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", regions=("ORD",)), timeout=30.0)
    sim.add_fault(Fault("trickle", api="servers", region="ORD", rate=50.0))
    poll = threading.Thread(target=exporter.poll, daemon=True)
    poll.start()
    time.sleep(0.5)  # the listing is trickling in
    started = time.monotonic()
    exporter.supervisor.stop(timeout=1)
    poll.join(timeout=5)
    assert not poll.is_alive()
    assert time.monotonic() - started < 2


def test_a_date_a_day_ahead_does_not_hide_later_changes(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", regions=("ORD",)))
    sim.add_fault(Fault("skew_date", api="servers", region="ORD", seconds=86400, count=1))
    exporter.poll()  # the full listing, dated a day ahead
    victim = region_servers(sim, "acme", "ORD")[0]["id"]
    sim.delete_server(victim)
    exporter.poll()
    exporter.poll()
    parsed = exporter.scrape()
    assert series(parsed, "rackconnect_server_info", server_id=victim) == []
    (since,) = listings(sim, "ORD")[1]["changes-since"]
    assert since < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert exporter.log.getvalue().count("upstream Date far from the local clock") == 1


def test_region_sync_never_starts_after_the_local_clock() -> None:
    sync = RegionSync(full_every=10, overlap=10)
    sync.succeeded(Listing(date=1000.0 + 86400), full=True, now=1000)
    assert sync.changes_since(now=1001) == 990  # a day ahead: the local clock
    sync.succeeded(Listing(date=1030.0), full=False, now=1020)
    assert sync.changes_since(now=1021) == 1010  # ahead within the skew: the local clock
    sync.succeeded(Listing(date=1025.0), full=False, now=1040)
    assert sync.changes_since(now=1041) == 1015  # behind: the upstream's own date
    sync.succeeded(Listing(date=None), full=True, now=5000)
    sync.succeeded(Listing(date=5000.0 - 3600), full=True, now=5000)
    assert sync.changes_since(now=5001) == 5000 - 3600 - 10  # far behind: still safe
    assert OVERLAP > 0


def test_a_next_link_without_changes_since_gets_it_back(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", regions=("ORD",)))
    exporter.supervisor.pollers[0].servers.page_size = 2
    exporter.poll()
    *changed, on_page_two = (s["id"] for s in region_servers(sim, "acme", "ORD"))
    assert len(changed) >= 2  # the delta spans pages of two
    for server_id in changed:
        sim.set_metadata(server_id, {"touched": "yes"})
    sim.delete_server(on_page_two)
    sim.add_fault(Fault("next_without_since", api="servers", region="ORD"))
    sim.request_log.clear()
    exporter.poll()
    assert all("changes-since" in q for q in listings(sim, "ORD"))
    parsed = exporter.scrape()
    assert series(parsed, "rackconnect_server_info", server_id=on_page_two) == []
    assert value(parsed, "rackconnect_up", account="acme", region="ORD") == 1


@pytest.mark.slow
def test_large_bodies_wait_for_the_decode_budget(sim, make_exporter) -> None:
    """With every decode slot taken, a large listing fails in time; small answers pass."""
    name = "x" * 2000  # about 2.5 KiB of JSON per server: a page over LARGE_BODY
    for i in range(500):
        sim.add_server("acme", "DFW", name=f"{name}-{i}", metadata={})
    exporter = make_exporter(account_config(sim, "acme", regions=("ORD", "DFW")), timeout=1.0)
    held = [deadline.decode_slot(0) for _ in range(deadline.DECODE_SLOTS)]
    assert all(slot.__enter__() for slot in held)
    try:
        exporter.poll()
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", region="ORD") == 1
    assert value(parsed, "rackconnect_up", region="DFW") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="DFW", reason="timeout") == 1
    exporter.poll()  # the budget is free again
    assert value(exporter.scrape(), "rackconnect_up", region="DFW") == 1


def test_the_catalog_version_urls_answer_version_documents(sim) -> None:
    token = requests.post(
        sim.identity_url + "tokens",
        json={"auth": {"RAX-KSKEY:apiKeyCredentials": cred(sim, "acme")}},
        timeout=5,
    ).json()
    catalog = token["access"]["serviceCatalog"]
    endpoints = [e for s in catalog if s["type"] == "compute" for e in s["endpoints"]]
    assert endpoints
    for endpoint in endpoints:
        listed = requests.get(endpoint["versionList"], timeout=5)
        assert listed.status_code == 200
        versions = listed.json()["versions"]
        assert [v["status"] for v in versions] == ["CURRENT"]
        info = requests.get(endpoint["versionInfo"], timeout=5)
        assert info.status_code == 200
        version = info.json()["version"]
        assert version["id"] == versions[0]["id"]
        assert version["id"].lstrip("v").startswith(endpoint["versionId"])
        assert any(link["rel"] == "self" for link in version["links"])


def cred(sim, name: str) -> dict:
    account = next(a for a in sim.accounts if a.name == name)
    return {"username": account.username, "apiKey": account.api_key}


def test_the_proxy_environment_is_honoured(sim, make_exporter, monkeypatch) -> None:
    """HTTP(S)_PROXY and NO_PROXY apply as requests applies them, read once per origin."""
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    through_proxy = make_exporter(account_config(sim, "acme", regions=("ORD",)))
    direct = make_exporter(account_config(sim, "acme", regions=("ORD",)))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    through_proxy.poll()
    assert sim.request_log == []  # nothing reached the cloud: the dead proxy was used
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct.poll()
    monkeypatch.delenv("HTTP_PROXY")  # read once: the first client keeps its proxy
    through_proxy.poll()
    assert value(direct.scrape(), "rackconnect_up", account="acme", region="ORD") == 1
    parsed = through_proxy.scrape()
    assert value(parsed, "rackconnect_poll_errors_total", reason="connection") == 2
