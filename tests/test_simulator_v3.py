"""The simulated RackConnect v3.0 API, over real HTTP, against the published answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from exporter.simulator import Fault, Scenario, ServerSpec, SimAccountSpec, Simulator

SAMPLES = Path(__file__).parent / "fixtures" / "rackconnect_v3"
APIKEY = "RAX-KSKEY:apiKeyCredentials"
NAIVE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?$")
PUBLISHED_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z?$")
TIME_KEYS = {"created", "updated"}


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def v3_scenario() -> Scenario:
    servers = tuple(ServerSpec(f"web-dfw-{i:02d}", "DFW") for i in range(1, 7))
    account = SimAccountSpec(
        name="vee",
        username="vee-ops",
        api_key="vee0123456789abcdef0123456789abcd",
        password="Vee-Demo-Passw0rd",
        tenant_id="400004",
        regions=("DFW", "ORD"),
        rackconnect_v3=("DFW",),
        servers=(*servers, ServerSpec("app-ord-01", "ORD")),
    )
    return Scenario(accounts=[account])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[Simulator]:
    s = Simulator(v3_scenario(), clock=clock)
    s.start()
    yield s
    s.stop()


class Api:
    """A logged-in session on one region's v3.0 endpoint."""

    def __init__(self, sim: Simulator, account: str = "vee", region: str = "DFW") -> None:
        a = next(a for a in sim.accounts if a.name == account)
        access = requests.post(
            sim.identity_url + "tokens",
            json={"auth": {APIKEY: {"username": a.username, "apiKey": a.api_key}}},
            timeout=5,
        ).json()["access"]
        self.catalog = access["serviceCatalog"]
        self.headers = {"X-Auth-Token": access["token"]["id"]}
        self.base = f"{sim.base_url}/{region.lower()}/rackconnect/v3/{a.tenant_id}"

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(f"{self.base}/{path}", params=params, headers=self.headers, timeout=5)

    def post(self, path: str, body: object) -> requests.Response:
        return requests.post(f"{self.base}/{path}", json=body, headers=self.headers, timeout=5)


def by_status(items: list[dict], status: str) -> dict:
    return next(i for i in items if i["status"] == status)


def server_without_v3(sim: Simulator) -> str:
    return sim.add_server("vee", "DFW", "pipeline-01")


# --- where it is --------------------------------------------------------------------------


def test_the_catalog_names_only_the_v3_regions(sim: Simulator) -> None:
    api = Api(sim)
    entries = [e for e in api.catalog if e["type"] == "rax:rackconnect"]
    assert len(entries) == 1
    assert entries[0]["name"] == "rackconnect"
    assert [(e["region"], e["publicURL"]) for e in entries[0]["endpoints"]] == [("DFW", api.base)]
    assert api.get("public_ips").status_code == 200
    assert Api(sim, region="ORD").get("public_ips").status_code == 404


def test_accounts_without_v3_have_no_catalog_entry_and_no_api() -> None:
    with Simulator(Scenario.demo()) as sim:
        api = Api(sim, "globex", "SYD")
        assert all(e["type"] != "rax:rackconnect" for e in api.catalog)
        assert api.get("public_ips").status_code == 404


def test_a_token_is_needed(sim: Simulator) -> None:
    api = Api(sim)
    assert requests.get(f"{api.base}/public_ips", timeout=5).status_code == 401


def test_the_demo_with_initech_on_v3_shows_a_failing_public_ip() -> None:
    with Simulator(Scenario.demo()) as sim:
        ips = Api(sim, "initech", "HKG").get("public_ips").json()
        assert {"ACTIVE", "ADDING", "ADD_FAILED"} <= {i["status"] for i in ips}
        assert Api(sim, "initech", "HKG").get("load_balancer_pools").json()


# --- state, timing and failures ----------------------------------------------------------


def test_the_starting_fleet_has_settled_unfinished_and_failed_resources(sim: Simulator) -> None:
    api = Api(sim)
    ips = api.get("public_ips").json()
    assert len(ips) == 6
    failed = by_status(ips, "ADD_FAILED")
    assert failed["status_detail"]
    assert failed["public_ip_v4"] is None
    assert by_status(ips, "ADDING")["public_ip_v4"] is None
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", by_status(ips, "ACTIVE")["public_ip_v4"])
    pools = api.get("load_balancer_pools").json()
    nodes = [n for p in pools for n in api.get(f"load_balancer_pools/{p['id']}/nodes").json()]
    node_failed = by_status(nodes, "ADD_FAILED")
    assert node_failed["status_detail"] == "Unable to communicate with network device"
    assert sum(p["node_counts"]["cloud_servers"] for p in pools) == len(nodes) == 6


def test_adding_turns_active_when_its_time_comes(sim: Simulator, clock: Clock) -> None:
    api = Api(sim)
    sid = server_without_v3(sim)
    added = api.post("public_ips", {"cloud_server": {"id": sid}})
    assert added.status_code == 201
    doc = added.json()
    assert (doc["status"], doc["public_ip_v4"], doc["updated"]) == ("ADDING", None, None)
    clock.now += 29
    assert api.get("public_ips", cloud_server_id=sid).json()[0]["status"] == "ADDING"
    clock.now += 1
    (ip,) = api.get("public_ips", cloud_server_id=sid).json()
    assert ip["status"] == "ACTIVE"
    assert ip["public_ip_v4"]
    assert ip["updated"]
    assert api.get(f"public_ips/{ip['id']}").json() == ip


def test_failures_carry_their_detail(sim: Simulator, clock: Clock) -> None:
    api = Api(sim)
    sid = server_without_v3(sim)
    pool = api.get("load_balancer_pools").json()[0]["id"]
    ip = sim.add_public_ip(sid, after=5, outcome="ADD_FAILED", detail="No addresses left")
    node = sim.add_pool_node(sid, pool, after=5, outcome="ADD_FAILED")
    clock.now += 5
    state = {r["id"]: r for r in sim.rackconnect_v3("vee", "DFW")["resources"]}
    assert (state[ip]["status"], state[ip]["status_detail"]) == ("ADD_FAILED", "No addresses left")
    assert state[node]["status_detail"] == "Unable to communicate with network device"
    details = api.get("load_balancer_pools/nodes/details", cloud_server_id=sid).json()
    assert [(d["id"], d["status"], d["load_balancer_pool"]["id"]) for d in details] == [
        (node, "ADD_FAILED", pool)
    ]


def test_removing_then_gone_or_failed(sim: Simulator, clock: Clock) -> None:
    api = Api(sim)
    sid = server_without_v3(sim)
    first = sim.add_public_ip(sid, after=0)
    second = sim.add_public_ip(sid, after=0)
    deleted = requests.delete(f"{api.base}/public_ips/{first}", headers=api.headers, timeout=5)
    assert deleted.status_code == 204
    sim.remove_v3(second, after=10, fail=True)
    states = {i["id"]: i["status"] for i in api.get("public_ips", cloud_server_id=sid).json()}
    assert states == {first: "REMOVING", second: "REMOVING"}
    clock.now += 30
    (left,) = api.get("public_ips", cloud_server_id=sid).json()
    assert (left["id"], left["status"]) == (second, "REMOVE_FAILED")
    assert left["status_detail"]
    assert api.get(f"public_ips/{first}").status_code == 404


def test_a_deleted_server_takes_its_resources_along(sim: Simulator) -> None:
    api = Api(sim)
    sid = api.get("public_ips").json()[0]["cloud_server"]["id"]
    sim.delete_server(sid)
    assert all(i["cloud_server"]["id"] != sid for i in api.get("public_ips").json())
    assert not api.get("load_balancer_pools/nodes/details", cloud_server_id=sid).json()


def test_servers_the_churn_builds_get_wired(clock: Clock) -> None:
    sim = Simulator(v3_scenario(), clock=clock)
    before = {r["server_id"] for r in sim.rackconnect_v3()["resources"]}
    for _ in range(30):
        sim.step()
    clock.now += 120
    after = sim.rackconnect_v3()["resources"]
    new = [r for r in after if r["server_id"] not in before]
    assert new, "no server built by the churn got a public IP or a pool node"
    assert {r["status"] for r in new} <= {"ACTIVE", "ADD_FAILED"}
    assert {r["kind"] for r in new} == {"public_ip", "pool_node"}


# --- quirks and faults --------------------------------------------------------------------


def test_quirks_zone_less_times_empty_body_and_statuses_as_stored(sim: Simulator) -> None:
    api = Api(sim)
    sid = server_without_v3(sim)
    empty = api.get("public_ips", cloud_server_id=sid)
    assert (empty.status_code, empty.content) == (200, b"")
    rid = sim.add_public_ip(sid, after=0)
    sim.set_v3_status(rid, " active ")
    (ip,) = api.get("public_ips", cloud_server_id=sid).json()
    assert ip["status"] == " active "
    for doc in (ip, ip["cloud_server"], ip["cloud_server"]["cloud_network"]):
        assert all(NAIVE_TIME.match(doc[k]) for k in TIME_KEYS), doc


def test_faults_reach_the_v3_api_by_region(sim: Simulator) -> None:
    api = Api(sim)
    sim.add_fault(Fault(kind="status", status=500, api="rackconnect_v3", region="DFW", count=1))
    assert api.get("load_balancer_pools").status_code == 500
    assert api.get("load_balancer_pools").status_code == 200
    sim.add_fault(Fault(kind="missing_key", api="rackconnect_v3", count=1))
    assert api.get("public_ips").json() == {}
    sim.add_fault(Fault(kind="rate_limit", api="rackconnect_v3", count=1, status=429))
    limited = api.get("public_ips")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"]
    sim.add_fault(Fault(kind="wrong_types", api="rackconnect_v3", count=1))
    assert {i["status"] for i in api.get("public_ips").json()} == {7}


def test_control_api_round_trip(sim: Simulator, clock: Clock) -> None:
    control = sim.control_url + "rackconnect_v3"
    sid = server_without_v3(sim)
    pools = requests.get(control, params={"account": "vee"}, timeout=5).json()["pools"]
    assert {(p["name"], p["port"]) for p in pools} == {("web-http", 80), ("web-https", 443)}
    ip = requests.post(
        f"{control}/public_ips", json={"server_id": sid, "after": 5}, timeout=5
    ).json()["id"]
    node = requests.post(
        f"{control}/pool_nodes",
        json={"server_id": sid, "pool_id": pools[0]["id"], "outcome": "ADD_FAILED"},
        timeout=5,
    ).json()["id"]
    status = requests.post(
        f"{control}/{ip}/status", json={"status": "Active ", "detail": None}, timeout=5
    )
    assert status.status_code == 200
    clock.now += 60
    state = {r["id"]: r for r in requests.get(control, timeout=5).json()["resources"]}
    assert state[ip]["status"] == "Active "
    assert state[node]["status"] == "ADD_FAILED"
    assert requests.delete(f"{control}/{node}", json={"after": 0}, timeout=5).status_code == 200
    assert node not in {r["id"] for r in requests.get(control, timeout=5).json()["resources"]}
    bad = requests.post(f"{control}/public_ips", json={"server_id": sid, "x": 1}, timeout=5)
    assert bad.status_code == 400
    assert "unknown field" in bad.json()["error"]
    missing = requests.post(f"{control}/nope/status", json={"status": "ACTIVE"}, timeout=5)
    assert missing.status_code == 404


# --- the published samples, field by field -------------------------------------------------


def shape(doc: object) -> object:
    """The keys and value types of a document (timestamps checked apart)."""
    if isinstance(doc, dict):
        return {k: shape(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [shape(doc[0])] if doc else []
    return type(doc).__name__


def times(doc: object, pattern: re.Pattern[str]) -> None:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in TIME_KEYS and v is not None:
                assert pattern.match(v), (k, v)
            times(v, pattern)
    elif isinstance(doc, list):
        for item in doc:
            times(item, pattern)


def sample(name: str) -> object:
    return json.loads((SAMPLES / name).read_bytes())


def same_fields(published: object, served: object, *, subset: bool = False) -> None:
    """Every published field is served with the same type; the docs' set is the whole set."""
    want, got = shape(published), shape(served)
    if subset:
        assert isinstance(want, dict)
        assert isinstance(got, dict)
        for key, value in want.items():
            if isinstance(value, dict):
                same_fields(published[key], served[key], subset=True)  # type: ignore[index]
            else:
                assert got[key] == value, key
    else:
        assert got == want
    times(published, PUBLISHED_TIME)
    times(served, NAIVE_TIME)


def test_public_ip_answers_match_the_published_samples(sim: Simulator, clock: Clock) -> None:
    api = Api(sim)
    listing = api.get("public_ips").json()
    active = by_status(listing, "ACTIVE")
    for name in ("docs-list-public-ips.json", "docs-list-public-ips-for-a-server.json"):
        same_fields(sample(name)[0], active)  # type: ignore[index]
    same_fields(sample("docs-one-public-ip.json"), api.get(f"public_ips/{active['id']}").json())
    one_server = api.get("public_ips", cloud_server_id=active["cloud_server"]["id"]).json()
    same_fields(sample("article-list-public-ips-for-a-server.json")[0], one_server[0], subset=True)  # type: ignore[index]
    sid = server_without_v3(sim)
    assert (
        api.get("public_ips", cloud_server_id=sid).content
        == (SAMPLES / "article-list-public-ips-none.body").read_bytes()
    )
    added = api.post("public_ips", {"cloud_server": {"id": sid}}).json()
    same_fields(sample("docs-add-public-ip.json"), added)
    same_fields(sample("article-add-public-ip.json"), added, subset=True)


def test_pool_answers_match_the_published_samples(sim: Simulator) -> None:
    api = Api(sim)
    pools = api.get("load_balancer_pools").json()
    same_fields(sample("docs-list-load-balancer-pools.repaired.json")[0], pools[0])  # type: ignore[index]
    published = sample("docs-list-pool-nodes.json")
    nodes = [n for p in pools for n in api.get(f"load_balancer_pools/{p['id']}/nodes").json()]
    for status in ("ACTIVE", "ADDING", "ADD_FAILED"):
        same_fields(by_status(published, status), by_status(nodes, status))  # type: ignore[arg-type]
    assert (
        by_status(nodes, "ADD_FAILED")["status_detail"]
        == (
            by_status(published, "ADD_FAILED")["status_detail"]  # type: ignore[arg-type]
        )
    )
    details = [
        d for p in pools for d in api.get(f"load_balancer_pools/{p['id']}/nodes/details").json()
    ]
    same_fields(
        by_status(sample("docs-pool-nodes-details.json"), "ACTIVE"),  # type: ignore[arg-type]
        by_status(details, "ACTIVE"),
    )
    sid = server_without_v3(sim)
    added = api.post(f"load_balancer_pools/{pools[0]['id']}/nodes", {"cloud_server": {"id": sid}})
    assert added.status_code == 201
    same_fields(sample("docs-add-pool-node.json"), added.json())
    networks = api.get("cloud_networks").json()
    same_fields(sample("docs-list-cloud-networks.json")[0], networks[0])  # type: ignore[index]
    assert api.get(f"cloud_networks/{networks[0]['id']}").json() == networks[0]
