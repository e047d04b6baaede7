"""Incremental polling with changes-since: deltas, deletions, the periodic full listing."""

from __future__ import annotations

import email.utils
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.polling.incremental import OVERLAP, RegionSync
from exporter.rackspace import cloudservers
from exporter.rackspace.cloudservers import Listing
from exporter.simulator import Fault
from tests.conftest import account_config
from tests.expo_helpers import series, value
from tests.test_poller import live_servers


def listings(sim, region: str) -> list[dict[str, list[str]]]:
    """The query of every servers/detail request to ``region``, in order."""
    return [
        parse_qs(urlsplit(target).query)
        for method, target, _status, _account, reg in sim.request_log
        if method == "GET" and reg == region and "/servers/detail" in target
    ]


def test_after_a_full_listing_only_changes_are_asked_for(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    first = {r: listings(sim, r) for r in ("ORD", "DFW", "IAD")}
    assert all(len(q) == 1 and "changes-since" not in q[0] for q in first.values())
    sim.request_log.clear()
    exporter.poll()
    for region in ("ORD", "DFW", "IAD"):
        queries = listings(sim, region)
        # An unchanged fleet costs one request per region.
        assert len(queries) == 1
        assert "changes-since" in queries[0]
    parsed = exporter.scrape()
    assert len(series(parsed, "rackconnect_server_info")) == len(live_servers(sim, "acme"))


def test_changes_since_starts_at_the_upstream_date_minus_the_overlap(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    dates: list[float] = []
    real = exporter.supervisor.pollers[0].servers.fetch

    def spy(*args, **kwargs):
        answer = real(*args, **kwargs)
        date = answer.response.headers["Date"]
        dates.append(email.utils.parsedate_to_datetime(date).timestamp())
        return answer

    exporter.supervisor.pollers[0].servers.fetch = spy
    exporter.poll()
    exporter.poll()
    (since,) = listings(sim, "HKG")[1]["changes-since"]
    assert since.endswith("Z")
    asked = datetime.fromisoformat(since).timestamp()
    assert asked == dates[0] - OVERLAP


def test_a_delta_adds_changes_and_removes_deleted_servers(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "globex"))
    exporter.poll()
    victim, changed = (s["id"] for s in live_servers(sim, "globex")[:2])
    region = next(s["region"] for s in live_servers(sim, "globex") if s["id"] == changed)
    sim.delete_server(victim)
    sim.set_metadata(changed, {"rackconnect_automation_status": "FAILED"})
    added = sim.add_server("globex", "SYD", name="fresh-01", metadata={})
    exporter.poll()
    assert all("changes-since" in q for q in listings(sim, "DFW")[1:])
    parsed = exporter.scrape()
    assert series(parsed, "rackconnect_server_info", server_id=victim) == []
    assert series(parsed, "rackconnect_server_info", server_id=added)
    failed = value(
        parsed,
        "rackconnect_automation_status",
        server_id=changed,
        region=region,
        status="FAILED",
    )
    assert failed == 1
    assert len(series(parsed, "rackconnect_server_info")) == len(live_servers(sim, "globex"))


def test_a_periodic_full_listing_heals_what_deltas_missed(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.supervisor.pollers[0].full_every = 3
    exporter.poll()
    # A server that changes-since never reports (its update time lies in the past).
    hidden = sim.add_server("initech", "HKG", name="hidden-01", metadata={})
    with sim.fleet.lock:
        sim.fleet.by_id[hidden].updated = 0
    exporter.poll()
    exporter.poll()
    assert series(exporter.scrape(), "rackconnect_server_info", server_id=hidden) == []
    exporter.poll()
    assert series(exporter.scrape(), "rackconnect_server_info", server_id=hidden)
    kinds = ["changes-since" in q for q in listings(sim, "HKG")]
    assert kinds == [False, True, True, False]


def test_a_failed_delta_loses_no_change(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.poll()
    target = live_servers(sim, "initech")[0]["id"]
    sim.set_metadata(target, {"rax_service_level_automation": "Build Error"})
    sim.add_fault(Fault(kind="status", api="servers", status=404, count=1))
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", region="HKG") == 0
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", region="HKG") == 1
    assert (
        value(
            parsed,
            "rackconnect_managed_operations_status",
            server_id=target,
            status="Build Error",
        )
        == 1
    )
    second, third = listings(sim, "HKG")[1:]
    assert second["changes-since"] == third["changes-since"]


def test_full_every_one_always_lists_in_full(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.supervisor.pollers[0].full_every = 1
    for _ in range(3):
        exporter.poll()
    assert not any("changes-since" in q for q in listings(sim, "HKG"))


def test_region_sync_rules() -> None:
    sync = RegionSync(full_every=3, overlap=10)
    assert sync.changes_since(now=1000) is None
    sync.succeeded(Listing(date=1000.0), full=True, now=1000)
    assert sync.changes_since(now=1001) == 990
    # a delta answered by a node whose clock is behind never moves the start backwards
    sync.succeeded(Listing(date=900.0), full=False, now=1060)
    assert sync.changes_since(now=1061) == 990
    sync.succeeded(Listing(date=1120.0), full=False, now=1120)
    assert sync.changes_since(now=1121) is None  # third poll: full again
    sync.succeeded(Listing(date=None), full=True, now=1200)
    assert sync.changes_since(now=1201) == 1190  # no Date header: the local clock
    assert sync.changes_since(now=1200 + 8 * 86400) is None  # too old to trust
    with pytest.raises(ValueError, match="full_every"):
        RegionSync(full_every=0)


def test_first_gen_deltas_use_epoch_seconds_and_304(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "acme", generations=("first",)))
    exporter.poll()
    before = series(exporter.scrape(), "rackconnect_server_info", region="GLOBAL")
    assert before
    sim.request_log.clear()
    exporter.poll()
    ((_method, target, status, _account, _region),) = [
        e for e in sim.request_log if e[4] == "GLOBAL" and "/servers/detail" in e[1]
    ]
    (since,) = parse_qs(urlsplit(target).query)["changes-since"]
    assert since.isdigit()
    assert status == 304
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", region="GLOBAL") == 1
    assert series(parsed, "rackconnect_server_info", region="GLOBAL") == before
    victim = before[0]["server_id"]
    sim.delete_server(victim)
    exporter.poll()
    after = series(exporter.scrape(), "rackconnect_server_info", region="GLOBAL")
    assert {s["server_id"] for s in after} == {s["server_id"] for s in before} - {victim}


def test_a_full_listing_keeps_the_records_of_servers_that_did_not_change(
    sim, make_exporter
) -> None:
    """An unchanged server document gives the very record of the last listing, not a copy."""
    exporter = make_exporter(account_config(sim, "globex"))
    cloud = exporter.supervisor.pollers[0].servers
    region = "DFW"
    before = {s.id: s for s in cloud.list_region(region).servers}
    changed = next(s["id"] for s in live_servers(sim, "globex") if s["region"] == region)
    sim.set_metadata(changed, {"rackconnect_automation_status": "FAILED"})
    after = {s.id: s for s in cloud.list_region(region, known=before).servers}
    assert after.keys() == before.keys()
    assert len(after) > 1
    assert after[changed] is not before[changed]
    assert after[changed].automation_status == "FAILED"
    assert all(after[i] is before[i] for i in after if i != changed)


def test_a_full_listing_decodes_only_the_pages_whose_body_changed(
    sim, make_exporter, monkeypatch
) -> None:
    """A page whose body is byte for byte the last one's adds the same records, undecoded."""
    exporter = make_exporter(account_config(sim, "globex"))
    cloud = exporter.supervisor.pollers[0].servers
    cloud.page_size = 2
    region = "DFW"
    decoded: list[bytes] = []
    real = cloudservers.decode_page

    def spy(data: bytes, labels: tuple[tuple[str, str], ...]):
        decoded.append(data)
        return real(data, labels)

    monkeypatch.setattr(cloudservers, "decode_page", spy)
    first = cloud.list_region(region)
    assert len(decoded) == first.requests >= 3
    decoded.clear()
    again = cloud.list_region(region)
    assert decoded == []
    assert again.requests == first.requests
    assert len(again.servers) == len(first.servers)
    assert all(a is b for a, b in zip(again.servers, first.servers, strict=True))

    ids = [s.id for s in first.servers]
    sim.set_metadata(ids[-1], {"rackconnect_automation_status": "FAILED"})
    changed = cloud.list_region(region, known={s.id: s for s in first.servers})
    assert len(decoded) == 1  # the last page only
    assert [s.id for s in changed.servers] == ids
    assert changed.servers[-1].automation_status == "FAILED"
    assert all(a is b for a, b in zip(changed.servers[:-1], first.servers[:-1], strict=True))

    # A deletion shifts every later page: they are decoded again, and read as a fresh
    # client reads them.
    sim.delete_server(ids[0])
    decoded.clear()
    shifted = cloud.list_region(region)
    assert len(decoded) == shifted.requests
    fresh = make_exporter(account_config(sim, "globex")).supervisor.pollers[0].servers
    fresh.page_size = 2
    assert shifted.servers == fresh.list_region(region).servers
    assert [s.id for s in shifted.servers] == ids[1:]


# Families whose series Prometheus sorts by account, region and server id, then by a label
# that names a server's own series (every other label is the same for all of them), and the
# features, which it sorts by feature first. Prometheus sorts label names too, so
# `generation`, `name` and `reason` come before `region`: those families cannot be in its
# order region by region.
SORTED_BY_SERVER = (
    "rackconnect_automation_feature_enabled",
    "rackconnect_server_created_timestamp_seconds",
    "rackconnect_automation_status",
    "rackconnect_managed_operations_status",
    "rackconnect_server_status",
    "rackconnect_server_ready",
)


def test_series_come_in_the_order_prometheus_sorts_them(sim, make_exporter) -> None:
    exporter = make_exporter(account_config(sim, "globex"), account_config(sim, "acme"))
    exporter.poll()
    for i in range(3):  # new servers come in a delta, in no particular order of id
        sim.add_server("globex", "SYD", name=f"fresh-{i}", metadata={})
    sim.delete_server(live_servers(sim, "globex")[0]["id"])
    exporter.poll()
    body = exporter.get("/metrics").text
    seen = set()
    for family in text_string_to_metric_families(body):
        if family.name in SORTED_BY_SERVER:
            keys = [sorted({**s.labels, "__name__": s.name}.items()) for s in family.samples]
            if family.name == "rackconnect_automation_feature_enabled":
                # in its order account by account (each feature is one run of all accounts)
                keys = [k for k in keys if ("account", "globex") in k]
            assert len(keys) > 3, family.name
            assert keys == sorted(keys), family.name
            seen.add(family.name)
            ids = [s.labels["server_id"] for s in family.samples]
            assert ids != sorted(ids, key=lambda i: i[::-1]), "the ids must not come sorted"
    assert seen == set(SORTED_BY_SERVER)
