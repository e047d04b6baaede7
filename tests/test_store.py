"""The store: a region's listing published in one step, and batched publishing."""

from __future__ import annotations

import gzip

import pytest

from exporter.errors import UpstreamError
from exporter.exposition.gzipparts import Part
from exporter.model import RegionView, Server
from exporter.polling.incremental import RegionRecords
from exporter.rackspace import cloudservers
from exporter.rackspace.cloudservers import Listing
from exporter.store import AccountWriter, Store
from tests.expo_helpers import samples, series
from tests.helpers import wait_until


def server(sid: str, status: str = "DEPLOYED") -> Server:
    return Server.from_api(
        {"id": sid, "name": f"n-{sid}", "metadata": {"rackconnect_automation_status": status}}
    )


def writer(store: Store) -> AccountWriter:
    return store.open_account("a")


def ids(store: Store, region: str = "ORD") -> list[str]:
    (account,) = store.current.accounts
    (view,) = [r for r in account.regions if r.region == region]
    return [s.id for s in view.servers]


def test_a_delta_replaces_changes_adds_new_and_drops_deleted() -> None:
    store = Store(60)
    w = writer(store)
    records = RegionRecords("ORD")
    w.succeeded("ORD", records.apply(Listing(servers=[server("1"), server("2"), server("3")])), 0.1)
    before = store.current
    delta = Listing(full=False, servers=[server("2", "FAILED"), server("4")], deleted=["3", "nope"])
    w.succeeded("ORD", records.apply(delta), 0.1)
    after = store.current
    assert ids(store) == ["1", "2", "4"]
    assert before is not after
    # the older snapshot is untouched: a scrape holding it sees the whole previous state
    assert [s.id for s in before.accounts[0].regions[0].servers] == ["1", "2", "3"]
    parsed = samples(after.body())
    assert {lbl["server_id"] for lbl in series(parsed, "rackconnect_server_info")} == {
        "1",
        "2",
        "4",
    }
    assert gzip.decompress(after.body(compressed=True)) == after.body()


def test_an_empty_delta_reuses_the_region_parts() -> None:
    store = Store(60)
    w = writer(store)
    records = RegionRecords("ORD")
    w.succeeded("ORD", records.apply(Listing(servers=[server(str(i)) for i in range(50)])), 0.1)
    parts = store.current.accounts[0].regions[0].parts
    w.succeeded("ORD", records.apply(Listing(full=False)), 0.1)
    assert store.current.accounts[0].regions[0].parts is parts


def test_changes_close_together_share_one_snapshot() -> None:
    store = Store(60, publish_delay=0.3)
    w = writer(store)
    first = store.current
    w.succeeded("ORD", [server("1")], 0.1)
    w.succeeded("DFW", [server("2")], 0.1)
    assert store.current is first
    wait_until(lambda: store.current is not first, 5, "the delayed publish")
    assert ids(store, "ORD") == ["1"]
    assert ids(store, "DFW") == ["2"]


def test_flush_publishes_what_waits_for_the_delay() -> None:
    store = Store(60, publish_delay=60)
    w = writer(store)
    store.flush()
    first = store.current
    w.succeeded("ORD", [server("1")], 0.1)
    assert store.current is first
    store.flush()
    assert ids(store) == ["1"]
    published = store.current
    store.flush()  # nothing waits: nothing new
    assert store.current is published


def test_a_write_replacing_many_lines_publishes_without_waiting() -> None:
    """Replaced lines live as long as the snapshot showing them: large ones go at once."""
    store = Store(60, publish_delay=60)
    w = writer(store)
    w.succeeded("DFW", [server("a")], 0.1)
    store.flush()
    before = store.current
    w.succeeded("DFW", [server("a", "FAILED")], 0.1)
    assert store.current is before  # a few lines: they wait for the delay
    count = 3000  # the automation status family is over PUBLISH_AT_ONCE_BYTES
    w.succeeded("ORD", [server(str(i)) for i in range(count)], 0.1)
    store.flush()
    before = store.current
    w.succeeded("ORD", [server("0", "FAILED")] + [server(str(i)) for i in range(1, count)], 0.1)
    assert store.current is before  # one server: only its chunks are replaced
    w.succeeded("ORD", [server(str(i), "FAILED") for i in range(count)], 0.1)
    assert store.current is not before
    (account,) = store.current.accounts
    (_, ord_) = account.regions
    assert {s.automation_status for s in ord_.servers} == {"FAILED"}


def last_one_fails(count: int) -> tuple[Store, RegionView, RegionView]:
    """A region of ``count`` servers, then the same listing with the last one FAILED."""
    store = Store(60)
    w = writer(store)
    w.succeeded("ORD", [server(str(i)) for i in range(count)], 0.1)
    before = store.current.accounts[0].regions[0]
    last = server(str(count - 1), "FAILED")
    w.succeeded("ORD", [server(str(i)) for i in range(count - 1)] + [last], 0.1)
    return store, before, store.current.accounts[0].regions[0]


def same(a: tuple[Part, ...], b: tuple[Part, ...]) -> bool:
    """Whether two families are the very same parts."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def test_a_change_in_a_large_region_rebuilds_only_its_chunks() -> None:
    """One server changed, added or removed: the other chunks are the parts of last time."""
    store, before, after = last_one_fails(3000)
    automation = 2
    old, new = before.parts[automation], after.parts[automation]
    assert len(old) > 4  # cut into chunks
    assert sum(p not in old for p in new) == 1
    pairs = zip(before.parts, after.parts, strict=True)
    assert sum(p not in was for was, now in pairs for p in now) <= 4  # a few families
    w = store._accounts["a"].writer
    servers = list(after.servers)
    w.succeeded("ORD", [*servers[:100], *servers[101:], server("new")], 0.1)
    moved = store.current.accounts[0].regions[0].parts[automation]
    assert sum(p not in new for p in moved) <= 2
    parsed = samples(store.current.body())
    assert len(series(parsed, "rackconnect_server_info")) == 3000


def test_an_unchanged_listing_keeps_the_records_already_held() -> None:
    """Equal records from a new poll are not kept beside the old ones: one set, not two."""
    _, before, after = last_one_fails(5)
    held, now = before.servers, after.servers
    assert all(a is b for a, b in zip(now[:4], held[:4], strict=True))
    assert now[4] is not held[4]
    assert now[4].automation_status == "FAILED"


def test_a_change_recompresses_only_the_families_whose_lines_changed() -> None:
    store, before, after = last_one_fails(50)
    info, automation = 0, 2  # rackconnect_server_info, rackconnect_automation_status
    assert same(after.parts[info], before.parts[info])
    assert not same(after.parts[automation], before.parts[automation])
    lines = b"".join(p.plain() for p in after.parts[automation])
    assert b'server_id="49",status="FAILED"} 1' in lines
    parsed = samples(store.current.body())
    assert len(series(parsed, "rackconnect_server_info")) == 50


def test_a_delta_over_the_server_cap_is_refused_and_nothing_is_kept(monkeypatch) -> None:
    monkeypatch.setattr(cloudservers, "MAX_SERVERS", 3)
    records = RegionRecords("ORD")
    held = records.apply(Listing(servers=[server("1"), server("2"), server("3")]))
    with pytest.raises(UpstreamError, match="more than 3 servers with these changes"):
        records.apply(Listing(full=False, servers=[server("4")]))
    assert records.servers is held
    assert set(records.known) == {"1", "2", "3"}
    # a deletion in the same delta makes room
    merged = records.apply(Listing(full=False, servers=[server("4")], deleted=["1"]))
    assert [s.id for s in merged] == ["2", "3", "4"]


def test_an_unchanged_full_listing_gives_the_records_already_held() -> None:
    records = RegionRecords("ORD")
    held = records.apply(Listing(servers=[server("1"), server("2")]))
    assert records.apply(Listing(servers=list(held))) is held
    assert records.apply(Listing(full=False)) is held
    # the same records listed in another order, or one of them twice, are not the same listing
    assert records.apply(Listing(servers=[held[1], held[0]])) is held
    twice = records.apply(Listing(servers=[held[0], held[0]]))
    assert [s.id for s in twice] == ["1"]
    fresh = records.apply(Listing(servers=[server("3"), server("2"), server("10")]))
    assert [s.id for s in fresh] == ["10", "2", "3"]  # in order of id, as Prometheus sorts
