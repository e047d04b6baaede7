"""Reading RackConnect v3.0: the published answers as they are, and the simulator's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from exporter.errors import AUTH, BAD_RESPONSE, HTTP_ERROR, UpstreamError
from exporter.rackspace import rackconnect_v3 as v3
from exporter.rackspace.client import ApiClient
from exporter.simulator import Fault, Simulator
from tests.test_simulator_v3 import APIKEY, Clock, v3_scenario

SAMPLES = Path(__file__).parent / "fixtures" / "rackconnect_v3"


def published(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


# --- the published samples, as they are ----------------------------------------------------


def test_the_documentation_s_public_ips() -> None:
    for name in ("docs-list-public-ips.json", "docs-list-public-ips-for-a-server.json"):
        assert v3.parse_public_ips(published(name)) == [
            v3.PublicIp(
                id="2d0f586b-37a7-4ae0-adac-2743d5feb450",
                server_id="d95ae0c4-6ab8-4873-b82f-f8433840cff2",
                address="203.0.113.110",
                status="ACTIVE",
                status_detail=None,
                created=utc(2014, 5, 30, 3, 23, 42),
                updated=utc(2014, 5, 30, 3, 24, 18),
            )
        ]
    (one,) = v3.parse_public_ips(published("docs-one-public-ip.json"))
    assert one.id == "2d0f586b-37a7-4ae0-adac-2743d5feb450"
    (added,) = v3.parse_public_ips(published("docs-add-public-ip.json"))
    assert (added.status, added.address, added.updated) == ("ADDING", "", None)


def test_the_article_s_answers_zone_less_times_are_utc() -> None:
    (ip,) = v3.parse_public_ips(published("article-list-public-ips-for-a-server.json"))
    assert ip.created == utc(2014, 9, 12, 14, 24, 58) + 0.713
    assert ip.updated == utc(2014, 9, 12, 14, 25, 7) + 0.783
    assert (ip.address, ip.status, ip.status_detail) == ("203.0.113.102", "ACTIVE", None)
    assert ip.server_id == "aaaNNNNNa-aaaa-NNNN-aNaN-aNNaaNaNaNaa"
    (adding,) = v3.parse_public_ips(published("article-add-public-ip.json"))
    assert (adding.status, adding.address, adding.updated) == ("ADDING", "", None)


def test_a_200_without_a_body_is_no_public_ip() -> None:
    assert published("article-list-public-ips-none.body") == b""
    assert v3.parse_public_ips(published("article-list-public-ips-none.body")) == []


def test_the_documentation_s_pools_and_nodes() -> None:
    pools = v3.parse_pools(published("docs-list-load-balancer-pools.repaired.json"))
    assert [(p.name, p.port, p.virtual_ip, p.status) for p in pools] == [
        ("RCv3Test", 80, "203.0.113.5", "ACTIVE"),
        ("RCv3Test2", 80, "203.0.113.7", "ACTIVE"),
        ("RCv3Test3", 443, "203.0.113.15", "ACTIVE"),
    ]
    pool = "d6d3aa7c-dfa5-4e61-96ee-1d54ac1075d2"
    for name in ("docs-list-pool-nodes.json", "docs-pool-nodes-details.json"):
        nodes = v3.parse_pool_nodes(published(name), pool)
        assert [(n.status, n.status_detail) for n in nodes] == [
            ("ACTIVE", None),
            ("ADDING", None),
            ("ADD_FAILED", "Unable to communicate with network device"),
        ]
        assert {n.pool_id for n in nodes} == {pool}
        assert nodes[2].server_id == "a3d3a6b3-e4e4-496f-9a3d-5c987163e458"
        assert nodes[2].updated == utc(2014, 5, 31, 8, 24, 36)
    (added,) = v3.parse_pool_nodes(published("docs-add-pool-node.json"))
    assert (added.pool_id, added.status, added.updated) == (pool, "ADDING", None)


def test_the_pools_page_as_published_is_not_json_and_says_so() -> None:
    with pytest.raises(UpstreamError) as caught:
        v3.parse_pools(published("docs-list-load-balancer-pools.txt"), "GET load_balancer_pools")
    assert caught.value.reason == BAD_RESPONSE
    assert str(caught.value) == "GET load_balancer_pools: body is not valid JSON"


# --- the rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACTIVE", "ACTIVE"),
        (" active ", "ACTIVE"),
        ("Add_Failed\n", "ADD_FAILED"),
        ("removing", "REMOVING"),
        ("REMOVE_FAILED", "REMOVE_FAILED"),
        ("DELETED", "UNKNOWN"),
        ("", "UNKNOWN"),
        (7, "UNKNOWN"),
        (None, "UNKNOWN"),
    ],
)
def test_states_are_trimmed_and_case_insensitive(raw: object, expected: str) -> None:
    assert v3.state(raw) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "GET x: unexpected document: Object missing required field `id`"),
        (b'[{"id": 7}]', "GET x: unexpected document: Expected `str`, got `int` - at `$[0].id`"),
        (b'[{"id": "a"}]', "GET x: unexpected document: Object missing required field "),
        (b"<html>Bad Gateway</html>", "GET x: body is not valid JSON"),
        (b'"ACTIVE"', "GET x: unexpected document: Expected `object | array`, got `str`"),
    ],
)
def test_bad_documents_raise_bad_response_saying_what(body: bytes, message: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        v3.parse_public_ips(body, "GET x")
    assert caught.value.reason == BAD_RESPONSE
    assert str(caught.value).startswith(message)


def test_a_node_without_any_pool_is_a_bad_document() -> None:
    body = b'[{"id": "n", "cloud_server": {"id": "s"}, "status": "ACTIVE"}]'
    with pytest.raises(UpstreamError, match="node 'n' names no pool"):
        v3.parse_pool_nodes(body, None, "GET nodes")
    assert v3.parse_pool_nodes(body, "p")[0].pool_id == "p"


def test_endpoints_are_found_by_type() -> None:
    catalog = [
        {"name": "cloudServersOpenStack", "type": "compute", "endpoints": []},
        {
            "name": "rackConnect",
            "type": "rax:rackconnect",
            "endpoints": [
                {"region": "dfw", "publicURL": "https://dfw.example/v3/1/"},
                {"region": "ORD"},
                "junk",
            ],
        },
    ]
    assert v3.endpoints(catalog) == {"DFW": "https://dfw.example/v3/1"}
    assert v3.endpoints({"not": "a list"}) == {}


# --- through the client, against the simulator ---------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    clock = Clock()
    s = Simulator(v3_scenario(), clock=clock)
    s.start()
    yield s
    s.stop()


class Session:
    """A token, the v3.0 endpoints and a counting client."""

    def __init__(self, sim: Simulator) -> None:
        a = sim.accounts[0]
        access = requests.post(
            sim.identity_url + "tokens",
            json={"auth": {APIKEY: {"username": a.username, "apiKey": a.api_key}}},
            timeout=5,
        ).json()["access"]
        self.token = access["token"]["id"]
        self.endpoints = v3.endpoints(access["serviceCatalog"])
        self.counted: list[tuple[str, str, int]] = []
        self.client = ApiClient(5.0, on_response=lambda *seen: self.counted.append(seen))


def test_reading_a_region_through_the_client(sim: Simulator) -> None:
    session = Session(sim)
    assert list(session.endpoints) == ["DFW"]
    base = session.endpoints["DFW"]
    state = v3.fetch_region(session.client, base, session.token, "DFW")
    truth = sim.rackconnect_v3("vee", "DFW")
    served = {(r["id"], r["status"], r["status_detail"]) for r in truth["resources"]}
    read = {(r.id, r.status, r.status_detail) for r in [*state.public_ips, *state.nodes]}
    assert read == served
    assert {p.id for p in state.pools} == {p["id"] for p in truth["pools"]}
    assert {ip.address for ip in state.public_ips if ip.status == "ACTIVE"} >= {
        r["public_ip_v4"]
        for r in truth["resources"]
        if r["status"] == "ACTIVE" and r.get("public_ip_v4")
    }
    assert all(ip.created is not None for ip in state.public_ips)
    assert session.counted == [("rackconnect_v3", "DFW", 200)] * 4  # pools, 2 x nodes, IPs


def test_quirks_through_the_client(sim: Simulator) -> None:
    session = Session(sim)
    base = session.endpoints["DFW"]
    sid = sim.add_server("vee", "DFW", "pipeline-01")
    assert v3.fetch_public_ips(session.client, base, session.token, "DFW", sid) == []
    rid = sim.add_public_ip(sid, after=0)
    sim.set_v3_status(rid, " active ")
    (ip,) = v3.fetch_public_ips(session.client, base, session.token, "DFW", sid)
    assert (ip.id, ip.status) == (rid, "ACTIVE")
    sim.set_v3_status(rid, "Provisioning")
    (ip,) = v3.fetch_public_ips(session.client, base, session.token, "DFW", sid)
    assert ip.status == "UNKNOWN"


def test_failures_through_the_client(sim: Simulator) -> None:
    session = Session(sim)
    base = session.endpoints["DFW"]
    client, token = session.client, session.token
    sim.add_fault(Fault(kind="status", status=400, api="rackconnect_v3", count=1))
    with pytest.raises(UpstreamError) as caught:
        v3.fetch_pools(client, base, token, "DFW")
    assert (caught.value.reason, caught.value.status) == (HTTP_ERROR, 400)
    sim.add_fault(Fault(kind="missing_key", api="rackconnect_v3", count=1))
    with pytest.raises(UpstreamError, match="unexpected document") as caught:
        v3.fetch_public_ips(client, base, token, "DFW")
    assert caught.value.reason == BAD_RESPONSE
    assert str(caught.value).startswith(f"GET {base}/public_ips: ")
    sim.add_fault(Fault(kind="wrong_types", api="rackconnect_v3", count=1))
    with pytest.raises(UpstreamError, match=r"Expected `str`, got `int`"):
        v3.fetch_pools(client, base, token, "DFW")
    sim.add_fault(Fault(kind="malformed_json", api="rackconnect_v3", count=1))
    with pytest.raises(UpstreamError, match="body is not valid JSON"):
        v3.fetch_public_ips(client, base, token, "DFW")
    with pytest.raises(UpstreamError) as caught:
        v3.fetch_pools(client, base, "not-a-token", "DFW")
    assert caught.value.reason == AUTH
    assert ("rackconnect_v3", "DFW", 401) in session.counted


def test_a_changed_answer_keeps_the_unchanged_items_objects(sim: Simulator) -> None:
    session = Session(sim)
    base = session.endpoints["DFW"]
    seen: v3.Seen = {}
    first = v3.fetch_region(session.client, base, session.token, "DFW", seen)
    sim.add_public_ip(sim.add_server("vee", "DFW", "pipeline-01"), after=0)
    second = v3.fetch_region(session.client, base, session.token, "DFW", seen)
    assert second.public_ips is not first.public_ips  # the answer changed
    held = {id(ip) for ip in first.public_ips}
    assert len(second.public_ips) == len(first.public_ips) + 1
    assert sum(id(ip) in held for ip in second.public_ips) == len(first.public_ips)
    assert {n.pool_id for n in second.nodes} == {p.id for p in second.pools}
    assert all(
        n.pool_id is next(p.id for p in second.pools if p.id == n.pool_id) for n in second.nodes
    )
