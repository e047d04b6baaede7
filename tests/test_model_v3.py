"""RackConnect v3.0 on the records: done, failure, the ready rule, the history and rendering."""

from __future__ import annotations

import dataclasses

import pytest

from exporter.exposition.families import PER_SERVER_FAMILIES
from exporter.exposition.families_v3 import PUBLIC_IP_STATUS
from exporter.exposition.history import changes
from exporter.exposition.render import RegionRenderer
from exporter.model import PoolNode, PublicIp, Server
from tests.expo_helpers import inflated


def ip(status: str, detail: str | None = None, id: str = "ip-1") -> PublicIp:
    return PublicIp(
        id=id, server_id="s1", address="", status=status, status_detail=detail,
        created=None, updated=None,
    )  # fmt: skip


def node(status: str, detail: str | None = None) -> PoolNode:
    return PoolNode(
        id="n-1", pool_id="p-1", server_id="s1", status=status, status_detail=detail,
        created=None, updated=None,
    )  # fmt: skip


BASE = Server(
    id="s1", name="web", generation="next", created=None, automation_status=None,
    features=(), managed_status=None, unprocessable_reason=None, status="ACTIVE",
)  # fmt: skip


@pytest.mark.parametrize(
    ("ips", "nodes", "ready"),
    [
        ((), (), True),
        ((ip("ACTIVE"),), (node("ACTIVE"),), True),
        ((ip("ADDING"),), (), False),
        ((ip("ACTIVE"),), (node("REMOVING"),), False),
        ((ip("ADD_FAILED", "no address"),), (), False),
        ((ip("ACTIVE"),), (node("ADD_FAILED"),), False),
        ((ip("REMOVE_FAILED"),), (), False),
        ((ip("UNKNOWN"),), (), False),
    ],
)
def test_v3_ready_rule(ips: tuple, nodes: tuple, ready: bool) -> None:
    server = dataclasses.replace(BASE, public_ips=ips, pool_nodes=nodes)
    assert server.v3_done() is ready
    assert server.ready(False, False, v3=True) is ready
    assert server.ready(False, False, v3=False)  # outside a v3.0 region v3.0 is not asked


def test_nova_build_is_not_ready_on_v3() -> None:
    building = dataclasses.replace(BASE, status="BUILD", public_ips=(ip("ACTIVE"),))
    assert not building.ready(False, False, v3=True)


def test_v3_failure_names_the_first_failed_resource() -> None:
    ok = dataclasses.replace(BASE, public_ips=(ip("ADDING"),), pool_nodes=(node("ACTIVE"),))
    assert ok.v3_failure() is None
    assert not ok.failed(False)
    failed = dataclasses.replace(
        BASE,
        public_ips=(ip("ACTIVE"), ip("REMOVE_FAILED", "device gone", id="ip-2")),
        pool_nodes=(node("ADD_FAILED", "Unable to communicate with network device"),),
    )
    assert failed.v3_failure() == ("public_ip", "ip-2", "REMOVE_FAILED", "device gone")
    assert failed.failed(False)
    node_failed = dataclasses.replace(BASE, pool_nodes=(node("ADD_FAILED", "x"),))
    assert node_failed.v3_failure() == ("pool_node", "n-1", "ADD_FAILED", "x")


def test_records_compare_by_value() -> None:
    one = dataclasses.replace(BASE, public_ips=(ip("ACTIVE"),))
    assert one == dataclasses.replace(BASE, public_ips=(ip("ACTIVE"),))
    assert one != dataclasses.replace(BASE, public_ips=(ip("ADDING"),))


def test_v3_history_counts_each_resource_and_times_it_from_its_created() -> None:
    adding = PublicIp(
        id="ip-1", server_id="s1", address="", status="ADDING", status_detail=None,
        created=1000.0, updated=1000.0,
    )  # fmt: skip
    active = PublicIp(
        id="ip-1", server_id="s1", address="203.0.113.9", status="ACTIVE", status_detail=None,
        created=1000.0, updated=1040.0,
    )  # fmt: skip
    before = dataclasses.replace(BASE, public_ips=(adding,), pool_nodes=(node("ACTIVE"),))
    after = dataclasses.replace(BASE, public_ips=(active,))
    found = changes([before], [after], now=1100.0)
    assert [(c.automation, c.before, c.after, c.duration) for c in found] == [
        ("rackconnect_v3_public_ip", "ADDING", "ACTIVE", 40.0),  # its updated, not the poll
        ("rackconnect_v3_pool_node", "ACTIVE", "none", None),  # the membership went
    ]
    appeared = changes([BASE], [dataclasses.replace(BASE, public_ips=(adding,))], now=1100.0)
    assert [(c.before, c.after, c.duration) for c in appeared] == [("none", "ADDING", None)]
    assert changes([after], [after], now=1200.0) == []


def test_the_v3_families_are_written_only_in_regions_that_have_v3() -> None:
    families = PER_SERVER_FAMILIES
    at = families.index(PUBLIC_IP_STATUS)
    renderer = RegionRenderer("acme", "DFW", families)
    plain = [dataclasses.replace(BASE, id=f"s{i}") for i in range(3)]
    before = renderer.render(plain, False, False)
    assert len(before) == len(families)
    assert before[at] == ()
    assert renderer.render(plain, False, False) is before  # unchanged: the same tuple
    wired = [*plain[:2], dataclasses.replace(plain[2], public_ips=(ip("ACTIVE"),))]
    after = renderer.render(wired, False, False)
    lines = inflated(after)
    assert b"".join(lines[at]).count(b"\n") == 6  # one public IP, six states
    assert lines[:at] == inflated(before)[:at]  # the other families' lines are the same
    assert renderer.render(plain, False, False)[at] == ()
