"""The simulated Rackspace cloud, exercised over real HTTP."""

from __future__ import annotations

import argparse
import email.utils
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from exporter.commands import simulate as simulate_command
from exporter.simulator import Fault, Scenario, ServerSpec, SimAccountSpec, Simulator
from exporter.simulator.scenario import rc_metadata
from tests.helpers import free_port, wait_until

APIKEY = "RAX-KSKEY:apiKeyCredentials"


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[Simulator]:
    s = Simulator(Scenario.demo(seed=1), clock=clock)
    s.start()
    yield s
    s.stop()


def account(sim: Simulator, name: str = "acme"):
    return next(a for a in sim.accounts if a.name == name)


def login(sim: Simulator, name: str = "acme") -> dict:
    a = account(sim, name)
    r = requests.post(
        sim.identity_url + "tokens",
        json={"auth": {APIKEY: {"username": a.username, "apiKey": a.api_key}}},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    return r.json()["access"]


def token(sim: Simulator, name: str = "acme") -> str:
    return login(sim, name)["token"]["id"]


def v2(sim: Simulator, region: str, name: str = "acme") -> str:
    return f"{sim.base_url}/{region.lower()}/servers/v2/{account(sim, name).tenant_id}"


def v1(sim: Simulator, name: str = "acme") -> str:
    return f"{sim.base_url}/first/servers/v1.0/{account(sim, name).tenant_id}"


def get(url: str, tok: str | None, **kw) -> requests.Response:
    headers = {"X-Auth-Token": tok} if tok else {}
    return requests.get(url, headers=headers, timeout=10, **kw)


def paged_scenario(n: int = 25, region: str = "ORD") -> Scenario:
    servers = tuple(
        ServerSpec(f"web-{region.lower()}-{i:02d}", region, metadata=rc_metadata("DEPLOYED"))
        for i in range(1, n + 1)
    )
    spec = SimAccountSpec(
        name="paged",
        username="pager",
        api_key="k" * 32,
        password="pw",
        tenant_id="555",
        regions=(region, "DFW"),
        rackconnect=True,
        servers=servers,
    )
    disabled = SimAccountSpec(
        name="gone",
        username="gone-user",
        api_key="g" * 32,
        password="gpw",
        tenant_id="556",
        regions=("ORD",),
        disabled=True,
    )
    return Scenario(accounts=[spec, disabled], seed=7)


@pytest.fixture
def paged(clock: Clock) -> Iterator[Simulator]:
    s = Simulator(paged_scenario(), clock=clock)
    s.start()
    yield s
    s.stop()


# --- Identity v2.0 -----------------------------------------------------------------------


def test_api_key_login_returns_token_catalog_and_roles(sim: Simulator) -> None:
    access = login(sim)
    tok = access["token"]
    assert re.fullmatch(r"[0-9a-f]{32}", tok["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", tok["expires"])
    expires = datetime.fromisoformat(tok["expires"]).timestamp()
    assert expires == pytest.approx(sim.clock() + 86400, abs=1)
    assert tok["tenant"] == {"id": "100001", "name": "100001"}
    assert tok["RAX-AUTH:authenticatedBy"] == ["APIKEY"]
    catalog = {e["name"]: e for e in access["serviceCatalog"]}
    assert set(catalog) == {"cloudFiles", "cloudServersOpenStack", "cloudServers"}
    nextgen = catalog["cloudServersOpenStack"]
    assert nextgen["type"] == "compute"
    assert [e["region"] for e in nextgen["endpoints"]] == ["ORD", "DFW", "IAD"]
    dfw = nextgen["endpoints"][1]
    assert dfw == {
        "region": "DFW",
        "tenantId": "100001",
        "publicURL": f"{sim.base_url}/dfw/servers/v2/100001",
        "versionInfo": f"{sim.base_url}/dfw/servers/v2",
        "versionList": f"{sim.base_url}/dfw/servers/",
        "versionId": "2",
    }
    (first,) = catalog["cloudServers"]["endpoints"]
    assert "region" not in first
    assert first["publicURL"] == f"{sim.base_url}/first/servers/v1.0/100001"
    user = access["user"]
    assert user["name"] == "acme-ops"
    assert user["RAX-AUTH:defaultRegion"] == "ORD"
    roles = {r["name"] for r in user["roles"]}
    assert {"compute:default", "rack_connect", "rax_managed"} <= roles


def test_roles_and_catalog_follow_account_features(sim: Simulator) -> None:
    globex = login(sim, "globex")
    roles = {r["name"] for r in globex["user"]["roles"]}
    assert "rack_connect" in roles
    assert "rax_managed" not in roles
    names = [e["name"] for e in globex["serviceCatalog"]]
    assert "cloudServers" not in names
    initech = login(sim, "initech")
    roles = {r["name"] for r in initech["user"]["roles"]}
    assert not roles & {"rack_connect", "rax_managed"}


def test_password_login_and_every_token_is_new(sim: Simulator) -> None:
    a = account(sim)
    body = {"auth": {"passwordCredentials": {"username": a.username, "password": a.password}}}
    first = requests.post(sim.base_url + "/v2.0/tokens", json=body, timeout=5)
    second = requests.post(sim.base_url + "/v2.0/tokens/", json=body, timeout=5)
    assert first.status_code == second.status_code == 200
    t1, t2 = first.json()["access"]["token"], second.json()["access"]["token"]
    assert t1["RAX-AUTH:authenticatedBy"] == ["PASSWORD"]
    assert t1["id"] != t2["id"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "auth",
    [
        {"tenantId": "100001", APIKEY: {"username": "acme-ops", "apiKey": "SECRET"}},
        {APIKEY: {"username": "acme-ops", "apiKey": "SECRET", "tenantId": "100001"}},
        {APIKEY: {"username": "acme-ops", "apiKey": "SECRET", "tenantName": "100001"}},
    ],
)
def test_tenant_scoping_in_either_place(sim: Simulator, auth: dict) -> None:
    text = json.dumps({"auth": auth}).replace("SECRET", account(sim).api_key)
    r = requests.post(sim.identity_url + "tokens", data=text, timeout=5)
    assert r.status_code == 200
    assert r.json()["access"]["token"]["tenant"]["id"] == "100001"


def test_identity_failures_have_exact_bodies(paged: Simulator) -> None:
    url = paged.identity_url + "tokens"
    bad_key = requests.post(
        url, json={"auth": {APIKEY: {"username": "pager", "apiKey": "nope"}}}, timeout=5
    )
    assert bad_key.status_code == 401
    assert bad_key.json() == {
        "unauthorized": {"code": 401, "message": "Username or api key is invalid."}
    }
    bad_pw = requests.post(
        url, json={"auth": {"passwordCredentials": {"username": "x", "password": "y"}}}, timeout=5
    )
    assert bad_pw.status_code == 401
    assert bad_pw.json() == {
        "unauthorized": {
            "code": 401,
            "message": "Unable to authenticate user with credentials provided.",
        }
    }
    garbage = requests.post(url, data=b"{auth:", timeout=5)
    assert garbage.status_code == 400
    assert garbage.json() == {
        "badRequest": {
            "code": 400,
            "message": "Invalid request body: unable to parse Auth data. "
            "Please review XML or JSON formatting.",
        }
    }
    both = requests.post(
        url,
        json={
            "auth": {
                "tenantId": "555",
                "tenantName": "555",
                APIKEY: {"username": "pager", "apiKey": "k" * 32},
            }
        },
        timeout=5,
    )
    assert both.status_code == 400
    assert list(both.json()) == ["badRequest"]
    wrong_tenant = requests.post(
        url,
        json={"auth": {"tenantId": "999", APIKEY: {"username": "pager", "apiKey": "k" * 32}}},
        timeout=5,
    )
    assert wrong_tenant.status_code == 401
    disabled = requests.post(
        url, json={"auth": {APIKEY: {"username": "gone-user", "apiKey": "g" * 32}}}, timeout=5
    )
    assert disabled.status_code == 403
    assert disabled.json()["userDisabled"]["code"] == 403


def test_expires_offset_format(sim: Simulator) -> None:
    sim.expires_format = "offset"
    expires = login(sim)["token"]["expires"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-05:00", expires)
    assert datetime.fromisoformat(expires).timestamp() == pytest.approx(sim.clock() + 86400, 1)
    with pytest.raises(ValueError, match="expires_format"):
        sim.expires_format = "local"


# --- Identity v1.0 -----------------------------------------------------------------------


def test_v1_auth_success_headers(sim: Simulator) -> None:
    a = account(sim)
    r = requests.get(
        sim.auth_v1_url, headers={"X-Auth-User": a.username, "X-Auth-Key": a.api_key}, timeout=5
    )
    assert r.status_code == 204
    assert r.content == b""
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Auth-Token"])
    assert r.headers["X-Server-Management-Url"] == f"{sim.base_url}/first/servers/v1.0/100001"
    assert r.headers["X-Tenant-Id"] == "100001"
    assert r.headers["Cache-Control"] == "s-maxage=86400"
    servers = get(v1(sim) + "/servers/detail", r.headers["X-Auth-Token"])
    assert servers.status_code == 200


def test_v1_auth_storage_headers_and_failures(sim: Simulator) -> None:
    g = account(sim, "globex")
    r = requests.get(
        sim.auth_v1_url,
        headers={"X-Storage-User": g.username, "X-Storage-Pass": g.api_key},
        timeout=5,
    )
    assert r.status_code == 204
    assert "X-Server-Management-Url" not in r.headers
    bad = requests.get(
        sim.auth_v1_url, headers={"X-Auth-User": g.username, "X-Auth-Key": "wrong"}, timeout=5
    )
    assert bad.status_code == 401
    assert bad.text == "Bad username or password"
    assert bad.headers["Content-Type"].startswith("text/plain")


# --- Cloud Servers v2: listing ----------------------------------------------------------


def test_paging_over_three_pages_with_exact_links(paged: Simulator) -> None:
    tok = token(paged, "paged")
    base = v2(paged, "ORD", "paged")
    ids = [s["id"] for s in paged.servers("paged", "ORD")]
    first = get(base + "/servers/detail?limit=10", tok).json()
    assert [s["id"] for s in first["servers"]] == ids[:10]
    assert first["servers_links"] == [
        {"href": f"{base}/servers/detail?limit=10&marker={ids[9]}", "rel": "next"}
    ]
    second = get(first["servers_links"][0]["href"], tok).json()
    assert [s["id"] for s in second["servers"]] == ids[10:20]
    assert second["servers_links"][0]["href"].endswith(f"marker={ids[19]}")
    third = get(second["servers_links"][0]["href"], tok).json()
    assert [s["id"] for s in third["servers"]] == ids[20:]
    assert "servers_links" not in third


def test_full_last_page_still_links_to_an_empty_page(paged: Simulator) -> None:
    tok = token(paged, "paged")
    base = v2(paged, "ORD", "paged")
    ids = [s["id"] for s in paged.servers("paged", "ORD")]
    page = get(base + f"/servers/detail?limit=5&marker={ids[19]}", tok).json()
    assert len(page["servers"]) == 5
    last = get(page["servers_links"][0]["href"], tok).json()
    assert last == {"servers": []}


def test_limit_zero_and_marker_without_limit(paged: Simulator) -> None:
    tok = token(paged, "paged")
    base = v2(paged, "ORD", "paged")
    ids = [s["id"] for s in paged.servers("paged", "ORD")]
    assert get(base + "/servers/detail?limit=0", tok).json() == {"servers": []}
    rest = get(base + f"/servers/detail?marker={ids[4]}", tok).json()
    assert [s["id"] for s in rest["servers"]] == ids[5:]
    assert "servers_links" not in rest
    everything = get(base + "/servers/detail", tok).json()
    assert len(everything["servers"]) == 25
    assert "servers_links" not in everything


def test_marker_and_limit_errors(paged: Simulator) -> None:
    tok = token(paged, "paged")
    base = v2(paged, "ORD", "paged")
    r = get(base + "/servers/detail?marker=nope", tok)
    assert r.status_code == 400
    assert r.json() == {"badRequest": {"code": 400, "message": "marker [nope] not found"}}
    other = paged.add_server("paged", "DFW", name="elsewhere")
    assert get(base + f"/servers/detail?marker={other}", tok).status_code == 400
    r = get(base + "/servers/detail?limit=ten", tok)
    assert r.json() == {"badRequest": {"code": 400, "message": "limit param must be an integer"}}
    r = get(base + "/servers/detail?limit=-1", tok)
    assert r.json() == {"badRequest": {"code": 400, "message": "limit param must be positive"}}


def test_limit_above_1000_is_clamped(clock: Clock) -> None:
    s = Simulator(Scenario.scale(servers=1500, regions=("ORD",)), clock=clock)
    s.start()
    try:
        tok = token(s, "scale")
        base = v2(s, "ORD", "scale")
        page = get(base + "/servers/detail?limit=5000", tok).json()
        assert len(page["servers"]) == 1000
        assert "limit=5000" in page["servers_links"][0]["href"]
        rest = get(page["servers_links"][0]["href"], tok).json()
        assert len(rest["servers"]) == 500
        assert "servers_links" not in rest
        unlimited = get(base + "/servers", tok).json()
        assert len(unlimited["servers"]) == 1000
        assert set(unlimited["servers"][0]) == {"id", "name", "links"}
        assert "servers_links" not in unlimited
        s.next_link_without_limit = True
        assert "servers_links" in get(base + "/servers", tok).json()
    finally:
        s.stop()


def test_next_link_uses_the_request_base_and_keeps_parameters(paged: Simulator) -> None:
    tok = token(paged, "paged")
    port = paged.base_url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/ord/servers/v2/555/servers/detail?name=web&limit=3"
    page = get(url, tok).json()
    href = page["servers_links"][0]["href"]
    assert href.startswith(f"http://localhost:{port}/ord/servers/v2/555/servers/detail?name=web")
    assert "&limit=3&marker=" in href
    assert page["servers"][0]["links"][0]["href"].startswith(f"http://localhost:{port}/ord/")


def test_name_and_status_filters(paged: Simulator) -> None:
    tok = token(paged, "paged")
    base = v2(paged, "ORD", "paged")
    names = [s["name"] for s in get(base + "/servers/detail?name=web-ord-2", tok).json()["servers"]]
    assert names == [f"web-ord-2{i}" for i in range(6)]
    paged.add_server("paged", "ORD", name="builder", status="BUILD")
    building = get(base + "/servers/detail?status=build", tok).json()["servers"]
    assert [s["name"] for s in building] == ["builder"]
    assert building[0]["addresses"] == {}


def test_server_document_shape(sim: Simulator) -> None:
    tok = token(sim)
    servers = get(v2(sim, "IAD") + "/servers/detail", tok).json()["servers"]
    doc = servers[0]
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", doc["id"]
    )
    assert doc["tenant_id"] == "100001"
    assert isinstance(doc["user_id"], str)
    for key in ("created", "updated"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc[key])
    assert re.fullmatch(r"[0-9a-f]{56}", doc["hostId"])
    assert doc["addresses"]["public"][0]["version"] == 4
    assert doc["links"][0]["rel"] == "self"
    assert doc["links"][1]["href"] == f"{sim.base_url}/iad/servers/100001/servers/{doc['id']}"
    assert doc["OS-EXT-STS:power_state"] == 1
    assert doc["config_drive"] == ""
    assert any(s["image"] == "" for s in servers)  # boot from volume
    assert any(isinstance(s["image"], dict) for s in servers)


def test_servers_api_headers(sim: Simulator) -> None:
    r = get(v2(sim, "ORD") + "/servers/detail", token(sim))
    assert re.fullmatch(r"req-[0-9a-f-]{36}", r.headers["x-compute-request-id"])
    assert r.headers["Via"].startswith("1.1 Repose (Repose/2.")


def test_demo_fleet_has_the_promised_mix(sim: Simulator) -> None:
    acme = sim.servers("acme")
    rc = {s["metadata"].get("rackconnect_automation_status") for s in acme}
    assert {"DEPLOYED", "DEPLOYING", "FAILED", "UNPROCESSABLE", "deployed", " DEPLOYED "} <= rc
    mo = {s["metadata"].get("rax_service_level_automation") for s in acme}
    assert {"Complete", "In Progress", "Build Error", "Pending", "Authentication Error"} <= mo
    unprocessable = next(
        s for s in acme if s["metadata"].get("rackconnect_automation_status") == "UNPROCESSABLE"
    )
    assert unprocessable["metadata"]["rackconnect_unprocessable_reason"] == (
        "Cloud server region DFW does not match RackConnect configuration region ORD"
    )
    values = [v for s in acme for k, v in s["metadata"].items() if "_feature_" in k]
    assert "DISABLED" in values
    assert any("rackconnect_automation_feature_provision_public_ip" in s["metadata"] for s in acme)
    assert any(
        "rackconnect_automation_status" in s["metadata"]
        and "rackconnect_automation_feature_manage_software_firewall" not in s["metadata"]
        for s in acme
    )
    first = sim.servers("acme", "GLOBAL")
    assert len(first) == 3
    assert all(s["generation"] == "first" and s["id"].isdigit() for s in first)
    for s in sim.servers("initech"):
        assert not any(k.startswith("rackconnect") for k in s["metadata"])
    for region in ("ORD", "DFW", "IAD"):
        assert 5 <= len(sim.servers("acme", region)) <= 10
    assert all(re.fullmatch(r"[a-z]+-[a-z]{3}-\d\d", s["name"]) for s in sim.servers("globex"))


def test_demo_servers_still_in_automation_were_created_minutes_ago(clock: Clock) -> None:
    sim = Simulator(Scenario.demo(seed=1), clock=clock)
    running, settled = [], []
    for s in sim.servers():
        meta = s["metadata"]
        rc = (meta.get("rackconnect_automation_status") or "").strip().upper()
        mo = meta.get("rax_service_level_automation")
        busy = s["status"] == "BUILD" or rc == "DEPLOYING" or mo in ("Pending", "In Progress")
        (running if busy else settled).append(s)
    assert len(running) >= 6  # BUILD, DEPLOYING in three regions, Pending, In Progress

    def age(s: dict, key: str) -> float:
        return clock.now - datetime.fromisoformat(s[key]).timestamp()

    for s in running:
        assert 60 <= age(s, "created") <= 86400, s
        assert age(s, "created") >= age(s, "updated") >= 60, s
    # The settled fleet keeps its months-old dates.
    assert max(age(s, "created") for s in settled) > 30 * 86400


# --- changes-since ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt",
    ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S+00:00", "%Y-%m-%dT%H:%M:%S"],
)
def test_changes_since_v2(sim: Simulator, clock: Clock, fmt: str) -> None:
    tok = token(sim)
    base = v2(sim, "ORD")
    since = time.strftime(fmt, time.gmtime(clock.now))
    assert get(base + "/servers/detail", tok, params={"changes-since": since}).json() == {
        "servers": []
    }
    ord_servers = sim.servers("acme", "ORD")
    changed, deleted = ord_servers[0]["id"], ord_servers[1]["id"]
    clock.advance(5)
    sim.set_metadata(changed, {"rackconnect_automation_status": "FAILED"})
    sim.delete_server(deleted)
    recent = get(base + "/servers/detail", tok, params={"changes-since": since}).json()
    by_id = {s["id"]: s for s in recent["servers"]}
    assert set(by_id) == {changed, deleted}
    assert by_id[deleted]["status"] == "DELETED"
    assert by_id[changed]["metadata"]["rackconnect_automation_status"] == "FAILED"
    plain = get(base + "/servers/detail", tok).json()["servers"]
    assert deleted not in {s["id"] for s in plain}
    assert get(base + f"/servers/{deleted}", tok).status_code == 404


def test_changes_since_keeps_deleted_for_30_days(sim: Simulator, clock: Clock) -> None:
    victim = sim.servers("acme", "DFW")[0]["id"]
    sim.delete_server(victim)
    clock.advance(29 * 86400)
    tok = token(sim)
    recent = get(v2(sim, "DFW") + "/servers/detail?changes-since=2000-01-01T00:00:00Z", tok)
    assert victim in {s["id"] for s in recent.json()["servers"]}
    clock.advance(2 * 86400)
    tok = token(sim)
    later = get(v2(sim, "DFW") + "/servers/detail?changes-since=2000-01-01T00:00:00Z", tok)
    assert victim not in {s["id"] for s in later.json()["servers"]}
    bad = get(v2(sim, "DFW") + "/servers/detail?changes-since=yesterday", tok)
    assert bad.status_code == 400
    assert bad.json()["badRequest"]["message"] == "Invalid changes-since value"


def test_set_metadata_bumps_updated_and_deletes_keys(sim: Simulator) -> None:
    server = sim.servers("acme", "ORD")[0]
    sim.set_metadata(server["id"], {"rax_service_level_automation": None, "x": "1"})
    after = next(s for s in sim.servers("acme", "ORD") if s["id"] == server["id"])
    assert after["updated"] > server["updated"]
    assert "rax_service_level_automation" not in after["metadata"]
    assert after["metadata"]["x"] == "1"
    sim.set_metadata(server["id"], {"only": "this"}, replace=True)
    assert sim.servers("acme", "ORD")[0]["metadata"] == {"only": "this"}
    with pytest.raises(ValueError, match="strings"):
        sim.set_metadata(server["id"], {"n": 1})
    with pytest.raises(KeyError):
        sim.set_metadata("missing", {})


# --- single server and metadata -----------------------------------------------------------


def test_single_server_and_metadata_endpoints(sim: Simulator) -> None:
    tok = token(sim)
    base = v2(sim, "DFW")
    server = sim.servers("acme", "DFW")[0]
    one = get(base + f"/servers/{server['id']}", tok).json()
    assert one["server"]["id"] == server["id"]
    assert one["server"]["metadata"] == server["metadata"]
    meta = get(base + f"/servers/{server['id']}/metadata", tok).json()
    assert meta == {"metadata": server["metadata"]}
    item = get(base + f"/servers/{server['id']}/metadata/rackconnect_automation_status", tok)
    assert item.json() == {
        "meta": {
            "rackconnect_automation_status": server["metadata"]["rackconnect_automation_status"]
        }
    }
    missing = get(base + "/servers/00000000-0000-4000-8000-000000000000", tok)
    assert missing.status_code == 404
    assert missing.json() == {
        "itemNotFound": {"code": 404, "message": "Instance could not be found"}
    }
    missing_meta = get(base + "/servers/00000000-0000-4000-8000-000000000000/metadata", tok)
    assert missing_meta.json() == {
        "itemNotFound": {"code": 404, "message": "Server does not exist"}
    }
    wrong_region = get(v2(sim, "ORD") + f"/servers/{server['id']}", tok)
    assert wrong_region.status_code == 404


# --- tokens --------------------------------------------------------------------------------


def test_token_rules(sim: Simulator, clock: Clock) -> None:
    base = v2(sim, "ORD")
    assert get(base + "/servers/detail", None).status_code == 401
    assert get(base + "/servers/detail", "f" * 32).json()["unauthorized"]["code"] == 401
    tok = token(sim)
    for region in ("ORD", "DFW", "IAD"):
        assert get(v2(sim, region) + "/servers/detail", tok).status_code == 200
    assert get(v2(sim, "DFW", "globex") + "/servers/detail", tok).status_code == 401
    assert get(v2(sim, "HKG") + "/servers/detail", tok).status_code == 404
    other = token(sim, "globex")
    sim.revoke_tokens("acme")
    assert get(base + "/servers/detail", tok).status_code == 401
    assert get(v1(sim) + "/servers/detail", tok).status_code == 401
    assert get(v2(sim, "DFW", "globex") + "/servers/detail", other).status_code == 200
    sim.revoke_tokens()
    assert get(v2(sim, "DFW", "globex") + "/servers/detail", other).status_code == 401


def test_token_expiry_uses_the_lifetime_at_issue(sim: Simulator, clock: Clock) -> None:
    sim.token_lifetime = 5.0
    short = token(sim)
    sim.token_lifetime = 3600.0
    longer = token(sim)
    base = v2(sim, "ORD") + "/servers/detail"
    assert get(base, short).status_code == 200
    clock.advance(5)
    assert get(base, short).status_code == 401
    assert get(base, longer).status_code == 200


# --- Cloud Servers v1.0 ----------------------------------------------------------------


def test_v1_listing_shapes_and_paging(sim: Simulator) -> None:
    tok = token(sim)
    body = get(v1(sim) + "/servers/detail.json", tok).json()
    servers = body["servers"]
    assert len(servers) == 3
    doc = servers[0]
    assert isinstance(doc["id"], int)
    assert isinstance(doc["imageId"], int)
    assert isinstance(doc["flavorId"], int)
    assert all(isinstance(a, str) for a in doc["addresses"]["public"])
    assert "updated" not in doc
    assert any("progress" not in s for s in servers)
    for s in servers:
        assert s["metadata"]["rackconnect_automation_status"] in {"DEPLOYED", "DEPLOYING", "FAILED"}
    page = get(v1(sim) + "/servers/detail?limit=2&offset=1", tok).json()["servers"]
    assert [s["id"] for s in page] == [s["id"] for s in servers[1:3]]
    assert get(v1(sim) + "/servers/detail?offset=10", tok).json() == {"servers": []}
    one = get(v1(sim) + f"/servers/{doc['id']}", tok).json()
    assert one["server"]["name"] == doc["name"]
    missing = get(v1(sim) + "/servers/1", tok)
    assert missing.status_code == 404
    assert list(missing.json()) == ["itemNotFound"]
    assert get(v1(sim) + "/servers/detail?limit=x", tok).json()["badRequest"]["code"] == 400


def test_v1_changes_since_304_and_deleted(sim: Simulator, clock: Clock) -> None:
    tok = token(sim)
    since = int(clock.now)
    nothing = get(v1(sim) + f"/servers/detail?changes-since={since}", tok)
    assert nothing.status_code == 304
    assert nothing.content == b""
    victim = sim.servers("acme", "GLOBAL")[0]["id"]
    clock.advance(3)
    sim.delete_server(victim)
    changed = get(v1(sim) + f"/servers/detail?changes-since={since}", tok).json()["servers"]
    assert [(s["id"], s["status"]) for s in changed] == [(int(victim), "DELETED")]
    assert len(get(v1(sim) + "/servers/detail", tok).json()["servers"]) == 2


def test_first_gen_add_server(sim: Simulator) -> None:
    sid = sim.add_server("acme", "GLOBAL", name="legacy-new", generation="first")
    assert sid.isdigit()
    added = next(s for s in sim.servers("acme") if s["id"] == sid)
    assert (added["region"], added["generation"]) == ("GLOBAL", "first")
    with pytest.raises(ValueError, match="first-gen"):
        sim.add_server("globex", "DFW", generation="first")
    with pytest.raises(ValueError, match="region"):
        sim.add_server("globex", "ORD")


# --- faults ----------------------------------------------------------------------------


def test_status_faults_use_each_api_fault_name(sim: Simulator) -> None:
    tok = token(sim)
    sim.add_fault(Fault("status", api="servers", status=500, count=1))
    r = get(v2(sim, "ORD") + "/servers/detail", tok)
    assert r.status_code == 500
    assert r.json()["computeFault"]["code"] == 500
    assert get(v2(sim, "ORD") + "/servers/detail", tok).status_code == 200
    sim.add_fault(Fault("status", api="servers", status=503, count=1))
    assert list(get(v2(sim, "ORD") + "/servers/detail", tok).json()) == ["serviceUnavailable"]
    sim.add_fault(Fault("status", api="servers_v1", count=1))
    assert list(get(v1(sim) + "/servers/detail", tok).json()) == ["cloudServersFault"]
    sim.add_fault(Fault("status", api="identity", count=1))
    r = requests.post(sim.identity_url + "tokens", json={}, timeout=5)
    assert r.status_code == 500
    assert list(r.json()) == ["identityFault"]


def test_fault_selectors_and_counts(sim: Simulator) -> None:
    tok = token(sim)
    fid = sim.add_fault(Fault("status", api="servers", region="dfw", status=503))
    assert get(v2(sim, "ORD") + "/servers/detail", tok).status_code == 200
    for _ in range(3):
        assert get(v2(sim, "DFW") + "/servers/detail", tok).status_code == 503
    sim.remove_fault(fid)
    assert get(v2(sim, "DFW") + "/servers/detail", tok).status_code == 200
    sim.add_fault(Fault("status", account="globex", path_contains="/servers/detail", count=2))
    g = token(sim, "globex")
    assert get(v2(sim, "DFW") + "/servers/detail", tok).status_code == 200
    assert get(v2(sim, "SYD", "globex") + "/servers", g).status_code == 200
    assert get(v2(sim, "SYD", "globex") + "/servers/detail", g).status_code == 500
    assert get(v2(sim, "DFW", "globex") + "/servers/detail", g).status_code == 500
    assert get(v2(sim, "DFW", "globex") + "/servers/detail", g).status_code == 200
    sim.add_fault(Fault("status", api="servers_v1", region="GLOBAL"))
    sim.clear_faults()
    assert get(v1(sim) + "/servers/detail", tok).status_code == 200
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


def test_delay_fault(sim: Simulator) -> None:
    tok = token(sim)
    sim.add_fault(Fault("delay", api="servers", seconds=0.3, count=1))
    started = time.monotonic()
    r = get(v2(sim, "ORD") + "/servers/detail", tok)
    assert r.status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.add_fault(Fault("delay", api="servers", seconds=0.5, count=1))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(v2(sim, "ORD") + "/servers/detail", headers={"X-Auth-Token": tok}, timeout=0.1)


def test_reset_fault_drops_the_connection(sim: Simulator) -> None:
    tok = token(sim)
    sim.add_fault(Fault("reset", api="servers", count=1))
    with pytest.raises(requests.exceptions.ConnectionError):
        get(v2(sim, "ORD") + "/servers/detail", tok)
    assert sim.request_log[-1][2] == 0
    assert get(v2(sim, "ORD") + "/servers/detail", tok).status_code == 200


def test_malformed_and_truncated_bodies(sim: Simulator) -> None:
    tok = token(sim)
    sim.add_fault(Fault("malformed_json", api="servers", count=1))
    r = get(v2(sim, "ORD") + "/servers/detail", tok)
    assert r.status_code == 200
    with pytest.raises(requests.exceptions.JSONDecodeError):
        r.json()
    sim.add_fault(Fault("truncated", api="servers", count=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(v2(sim, "ORD") + "/servers/detail", tok)
    sim.add_fault(Fault("malformed_json", api="identity", count=1))
    reply = requests.post(sim.identity_url + "tokens", json={}, timeout=5)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        reply.json()


def test_missing_key_faults(sim: Simulator) -> None:
    tok = token(sim)
    sim.add_fault(Fault("missing_key", api="servers", count=1))
    assert get(v2(sim, "ORD") + "/servers/detail", tok).json() == {}
    sim.add_fault(Fault("missing_key", api="identity", count=1))
    a = account(sim)
    r = requests.post(
        sim.identity_url + "tokens",
        json={"auth": {APIKEY: {"username": a.username, "apiKey": a.api_key}}},
        timeout=5,
    )
    assert r.status_code == 200
    assert "access" not in r.json()
    sim.add_fault(Fault("missing_key", api="identity_v1", count=1))
    r = requests.get(
        sim.auth_v1_url, headers={"X-Auth-User": a.username, "X-Auth-Key": a.api_key}, timeout=5
    )
    assert r.status_code == 204
    assert "X-Auth-Token" not in r.headers


def test_wrong_types_variants(sim: Simulator) -> None:
    tok = token(sim)
    url = v2(sim, "ORD") + "/servers/detail"
    sim.add_fault(Fault("wrong_types", api="servers", count=1))
    assert isinstance(get(url, tok).json()["servers"], dict)
    checks = {
        "metadata_list": lambda s: isinstance(s["metadata"], list),
        "id_int": lambda s: isinstance(s["id"], int),
        "name_null": lambda s: s["name"] is None,
        "created_garbage": lambda s: s["created"] == "sometime last week",
    }
    for variant, check in checks.items():
        sim.add_fault(Fault("wrong_types", api="servers", variant=variant, count=1))
        servers = get(url, tok).json()["servers"]
        assert all(check(s) for s in servers), variant
    a = account(sim)
    creds = {"auth": {APIKEY: {"username": a.username, "apiKey": a.api_key}}}
    sim.add_fault(Fault("wrong_types", api="identity", count=1))
    access = requests.post(sim.identity_url + "tokens", json=creds, timeout=5).json()["access"]
    assert isinstance(access["serviceCatalog"], dict)
    sim.add_fault(Fault("wrong_types", api="identity", variant="token_int", count=1))
    access = requests.post(sim.identity_url + "tokens", json=creds, timeout=5).json()["access"]
    assert isinstance(access["token"]["id"], int)


def test_loop_next_fault(paged: Simulator) -> None:
    tok = token(paged, "paged")
    base = v2(paged, "ORD", "paged")
    paged.add_fault(Fault("loop_next", api="servers"))
    first = get(base + "/servers/detail?limit=10", tok).json()
    href = first["servers_links"][0]["href"]
    again = get(href, tok).json()
    assert again["servers_links"][0]["href"] == href
    assert get(href, tok).json()["servers_links"][0]["href"] == href


def test_rate_limit_fault_variants(sim: Simulator, clock: Clock) -> None:
    tok = token(sim)
    url = v2(sim, "ORD") + "/servers/detail"
    sim.add_fault(Fault("rate_limit", api="servers", count=1, retry_after=30))
    r = get(url, tok)
    assert r.status_code == 413
    retry_at = email.utils.parsedate_to_datetime(r.headers["Retry-After"]).timestamp()
    assert retry_at == pytest.approx(clock.now + 30, abs=1)
    body = r.json()["overLimit"]
    assert body["code"] == 413
    assert datetime.fromisoformat(body["retryAfter"]).timestamp() == pytest.approx(retry_at, abs=1)
    sim.add_fault(
        Fault(
            "rate_limit",
            api="servers",
            status=429,
            retry_after_format="seconds",
            body_key="retryAt",
            retry_after=7,
            count=1,
        )
    )
    r = get(url, tok)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "7"
    assert "retryAt" in r.json()["overLimit"]


def test_unauthorized_fault_then_recovers(sim: Simulator) -> None:
    tok = token(sim)
    sim.add_fault(Fault("unauthorized", api="servers", count=1))
    r = get(v2(sim, "ORD") + "/servers/detail", tok)
    assert r.status_code == 401
    assert r.json()["unauthorized"]["code"] == 401
    assert get(v2(sim, "ORD") + "/servers/detail", tok).status_code == 200


def test_account_rate_limit(sim: Simulator, clock: Clock) -> None:
    sim.rate_limit_per_minute = 3
    tok = token(sim)
    url = v2(sim, "ORD") + "/servers/detail"
    assert [get(url, tok).status_code for _ in range(3)] == [200, 200, 200]
    limited = get(url, tok)
    assert limited.status_code == 413
    assert limited.json()["overLimit"]["retryAfter"].endswith("Z")
    retry_at = email.utils.parsedate_to_datetime(limited.headers["Retry-After"]).timestamp()
    assert retry_at == pytest.approx(clock.now + 60, abs=1)
    assert get(v2(sim, "DFW", "globex") + "/servers/detail", token(sim, "globex")).ok
    clock.advance(61)
    assert get(url, tok).status_code == 200


# --- RackConnect in-server API ----------------------------------------------------------


def rc(sim: Simulator, server_id: str, path: str, **params: str) -> requests.Response:
    return requests.get(
        f"{sim.base_url}/rackconnect/{server_id}/v1/{path}", params=params, timeout=5
    )


def find(sim: Simulator, account_name: str, status: str) -> str:
    return next(
        s["id"]
        for s in sim.servers(account_name)
        if s["metadata"].get("rackconnect_automation_status") == status
    )


def test_in_server_status_formats(sim: Simulator) -> None:
    sid = find(sim, "acme", "DEPLOYED")
    text = rc(sim, sid, "automation_status")
    assert text.status_code == 200
    assert text.text == "DEPLOYED"
    assert rc(sim, sid, "automation_status", format="JSON").json() == {
        "automation_status": "DEPLOYED"
    }
    xml = rc(sim, sid, "automation_status", format="xml").text
    assert "<automation_status>DEPLOYED</automation_status>" in xml
    assert rc(sim, sid, "automation_status", format="yaml").status_code == 400
    assert rc(sim, find(sim, "globex", "FAILED"), "automation_status").text == "FAILED"


def test_in_server_variants(sim: Simulator) -> None:
    sid = find(sim, "acme", "DEPLOYED")
    details = rc(sim, sid, "automation_status/details").json()
    assert details["automation_status"] == "DEPLOYED"
    assert details["tasks"][0] == {"name": "configure_network_stack", "status": "COMPLETED"}
    features = rc(sim, sid, "automation_features").json()
    assert {"name": "configure_network_stack", "status": "ENABLED"} in features[
        "automation_features"
    ]
    gateway = rc(sim, sid, "gateway_ip", format="json").json()
    assert re.fullmatch(r"10\.\d+\.\d+\.1", gateway["gateway_ip"])
    assert rc(sim, sid, "gateway_ip").text == gateway["gateway_ip"]
    sim.rackconnect_variant = "b"
    details = rc(sim, sid, "automation_status/details").json()
    assert details["cloud_server_tasks"][0]["task_status"] == "COMPLETED"
    assert rc(sim, sid, "automation_features").json()["manage_software_firewall"] == "ENABLED"
    assert rc(sim, sid, "gateway_ip", format="json").json() == {"ip": gateway["gateway_ip"]}
    with pytest.raises(ValueError, match="rackconnect_variant"):
        sim.rackconnect_variant = "c"


def test_gateway_404_until_deployed(sim: Simulator) -> None:
    sid = find(sim, "globex", "DEPLOYING")
    assert rc(sim, sid, "gateway_ip").status_code == 404
    assert rc(sim, sid, "automation_status").text == "DEPLOYING"
    sim.set_metadata(sid, {"rackconnect_automation_status": "DEPLOYED"})
    assert rc(sim, sid, "gateway_ip").status_code == 200


def test_in_server_rate_limit_and_unknown_servers(sim: Simulator, clock: Clock) -> None:
    clock.now = (clock.now // 60) * 60
    sid = find(sim, "acme", "DEPLOYED")
    codes = [rc(sim, sid, "automation_status").status_code for _ in range(31)]
    assert codes == [200] * 30 + [403]
    other = find(sim, "globex", "DEPLOYED")
    assert rc(sim, other, "automation_status").status_code == 200
    clock.advance(60)
    assert rc(sim, sid, "automation_status").status_code == 200
    assert rc(sim, "no-such-server", "automation_status").status_code == 404
    plain = sim.servers("initech")[0]["id"]
    assert rc(sim, plain, "automation_status").status_code == 404
    region = next(x["region"] for x in sim.servers("acme") if x["id"] == sid)
    entry = next(e for e in sim.request_log if e[1] == f"/rackconnect/{sid}/v1/automation_status")
    assert entry == ("GET", f"/rackconnect/{sid}/v1/automation_status", 200, "acme", region)
    sim.request_log.clear()
    assert sim.request_log == []


# --- control API -------------------------------------------------------------------------


def control(sim: Simulator, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, f"{sim.base_url}/_control/{path}", json=body, timeout=5)


def test_control_api_round_trip(sim: Simulator) -> None:
    accounts = control(sim, "GET", "accounts").json()["accounts"]
    assert [a["name"] for a in accounts] == ["acme", "globex", "initech"]
    assert accounts[0]["regions"] == ["ORD", "DFW", "IAD"]
    created = control(
        sim,
        "POST",
        "servers",
        {"account": "globex", "region": "syd", "name": "api-syd-99", "metadata": {"a": "b"}},
    )
    assert created.status_code == 200
    sid = created.json()["id"]
    tok = token(sim, "globex")
    doc = get(v2(sim, "SYD", "globex") + f"/servers/{sid}", tok).json()["server"]
    assert (doc["name"], doc["metadata"]) == ("api-syd-99", {"a": "b"})
    r = control(
        sim,
        "POST",
        f"servers/{sid}/metadata",
        {"metadata": {"rackconnect_automation_status": "DEPLOYED", "a": None}},
    )
    assert r.status_code == 200
    listed = control(sim, "GET", "servers?account=globex&region=SYD").json()["servers"]
    mine = next(s for s in listed if s["id"] == sid)
    assert mine["metadata"] == {"rackconnect_automation_status": "DEPLOYED"}
    assert control(sim, "DELETE", f"servers/{sid}").status_code == 200
    assert control(sim, "DELETE", f"servers/{sid}").status_code == 404
    fid = control(sim, "POST", "faults", {"kind": "status", "api": "servers", "status": 503}).json()
    assert control(sim, "GET", "faults").json()["faults"][0]["id"] == fid["id"]
    assert get(v2(sim, "SYD", "globex") + "/servers", tok).status_code == 503
    assert control(sim, "DELETE", f"faults/{fid['id']}").status_code == 200
    assert control(sim, "DELETE", f"faults/{fid['id']}").status_code == 404
    control(sim, "POST", "faults", {"kind": "reset"})
    assert control(sim, "DELETE", "faults").status_code == 200
    assert control(sim, "POST", "revoke", {"account": "globex"}).status_code == 200
    assert get(v2(sim, "SYD", "globex") + "/servers", tok).status_code == 401
    assert control(sim, "POST", "step", {"count": 3}).json() == {"steps": 3}
    settings = control(
        sim,
        "PUT",
        "settings",
        {
            "token_lifetime": 5,
            "expires_format": "offset",
            "rackconnect_variant": "b",
            "rate_limit_per_minute": 100,
        },
    )
    assert settings.json()["rackconnect_variant"] == "b"
    assert (sim.token_lifetime, sim.expires_format, sim.rate_limit_per_minute) == (5, "offset", 100)


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "servers", {"account": "nobody", "region": "ORD"}, "unknown account"),
        ("POST", "servers", {"account": "acme"}, "'region' is required"),
        ("POST", "servers", {"account": "acme", "region": "ORD", "colour": "red"}, "colour"),
        ("POST", "faults", {"kind": "explode"}, "unknown fault kind"),
        ("POST", "faults", {"kind": "status", "api": "dns"}, "unknown api"),
        ("POST", "faults", {"kind": "status", "count": 0}, "count"),
        ("PUT", "settings", {"expires_format": "local"}, "expires_format"),
        ("PUT", "settings", {"token_lifetime": -1}, "token_lifetime"),
        ("PUT", "settings", {"speed": 3}, "unknown field"),
        ("POST", "revoke", {"account": "nobody"}, "unknown account"),
    ],
)
def test_control_api_rejects_bad_input(
    sim: Simulator, method: str, path: str, body: dict, message: str
) -> None:
    r = control(sim, method, path, body)
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert sim.expires_format == "z"


def test_control_api_bad_json(sim: Simulator) -> None:
    r = requests.post(f"{sim.base_url}/_control/faults", data=b"{", timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == "request body is not valid JSON"


# --- evolution -----------------------------------------------------------------------------


def test_step_reaches_every_state_and_keeps_the_fleet_stable(clock: Clock) -> None:
    sim = Simulator(Scenario.demo(seed=1), clock=clock)
    start = len(sim.servers())
    rc_seen: set[str] = set()
    mo_seen: set[str] = set()
    statuses: set[str] = set()
    for _ in range(300):
        clock.advance(5)
        sim.step()
        for s in sim.servers(include_deleted=True):
            statuses.add(s["status"])
            meta = s["metadata"]
            rc_seen.add(meta.get("rackconnect_automation_status", ""))
            mo_seen.add(meta.get("rax_service_level_automation", ""))
            if s["generation"] == "first":
                assert meta.get("rackconnect_automation_status") != "UNPROCESSABLE"
                assert "rax_service_level_automation" not in meta
            if s["account"] == "initech":
                assert not any(k.startswith("rackconnect") for k in meta)
            if s["account"] == "globex":
                assert "rax_service_level_automation" not in meta
    assert {"DEPLOYING", "DEPLOYED", "FAILED", "UNPROCESSABLE"} <= rc_seen
    assert {"Pending", "In Progress", "Complete", "Build Error", "Authentication Error"} <= mo_seen
    assert {"BUILD", "ACTIVE", "DELETED"} <= statuses
    assert 0.6 * start <= len(sim.servers()) <= 1.5 * start


def test_new_servers_walk_through_the_pipeline(clock: Clock) -> None:
    sim = Simulator(Scenario.demo(seed=3), clock=clock)
    sid = sim.add_server("acme", "ORD", name="fresh", status="BUILD")
    seen = []
    for _ in range(12):
        sim.step()
        s = next(x for x in sim.servers(include_deleted=True) if x["id"] == sid)
        seen.append(
            (
                s["status"],
                s["metadata"].get("rackconnect_automation_status"),
                s["metadata"].get("rax_service_level_automation"),
            )
        )
    assert seen[0] == ("ACTIVE", "DEPLOYING", None)
    rc_states = [m for _, m, _ in seen]
    final_rc = rc_states[-1]
    assert final_rc in {"DEPLOYED", "FAILED", "UNPROCESSABLE"}
    assert rc_states.index(final_rc) <= 3
    if final_rc == "DEPLOYED":
        mo = [m for *_, m in seen if m]
        assert mo[0] == "Pending"
        assert mo[-1] in {"Complete", "Build Error", "Authentication Error"}


def test_step_is_deterministic(clock: Clock) -> None:
    def run() -> list[tuple]:
        sim = Simulator(Scenario.demo(seed=5), clock=clock)
        for _ in range(40):
            sim.step()
        return [(s["id"], s["status"], s["metadata"]) for s in sim.servers(include_deleted=True)]

    assert run() == run()


def test_background_stepping(clock: Clock) -> None:
    sim = Simulator(Scenario.demo(seed=1), step_interval=0.02, clock=clock)
    sim.start()
    try:
        wait_until(lambda: sim.fleet.steps >= 3, 5, "three steps", interval=0.01)
    finally:
        sim.stop()


# --- scale -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_scale_50000_servers_in_50_pages() -> None:
    sim = Simulator(Scenario.scale(servers=50000, regions=("ORD",)))
    sim.start()
    try:
        tok = token(sim, "scale")
        session = requests.Session()
        session.headers["X-Auth-Token"] = tok
        url: str | None = v2(sim, "ORD", "scale") + "/servers/detail?limit=1000"
        sizes = []
        seen: set[str] = set()
        while url:
            page = session.get(url, timeout=30).json()
            sizes.append(len(page["servers"]))
            seen.update(s["id"] for s in page["servers"])
            url = next((ln["href"] for ln in page.get("servers_links", [])), None)
        assert sizes[:50] == [1000] * 50
        assert sizes[50:] == [0]
        assert len(seen) == 50000
    finally:
        sim.stop()


# --- command ---------------------------------------------------------------------------------


def test_command_flags_and_build() -> None:
    parser = argparse.ArgumentParser()
    simulate_command.add_arguments(parser)
    args = parser.parse_args([])
    assert args.web_listen_address == "127.0.0.1:10055"
    assert (args.scenario, args.servers, args.seed) == ("demo", 1000, 1)
    assert (args.step_interval, args.token_lifetime) == ("5s", "24h")
    sim, host, port = simulate_command.build(
        parser.parse_args(
            [
                "--scenario",
                "scale",
                "--servers",
                "30",
                "--simulator.step-interval",
                "0",
                "--token-lifetime",
                "10m",
                "--web.listen-address",
                ":0",
            ]
        )
    )
    assert (host, port) == ("", 0)
    assert sim.step_interval is None
    assert sim.token_lifetime == 600
    assert len(sim.servers()) == 30
    with pytest.raises(ValueError, match=r"--simulator\.step-interval: invalid duration 'soon'"):
        simulate_command.build(parser.parse_args(["--simulator.step-interval", "soon"]))


def test_the_old_step_interval_spelling_still_works_unlisted() -> None:
    parser = argparse.ArgumentParser()
    simulate_command.add_arguments(parser)
    assert parser.parse_args(["--step-interval", "2s"]).step_interval == "2s"
    assert parser.parse_args(["--simulator.step-interval", "3s"]).step_interval == "3s"
    shown = parser.format_help()
    assert "--simulator.step-interval" in shown
    assert "--step-interval" not in shown


def test_endpoint_override_makes_one_region_refuse_connections(sim: Simulator) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    reply = control(sim, "PUT", "endpoints/dfw", {"url": closed})
    assert reply.json() == {"endpoints": {"DFW": closed}}
    catalog = {
        e["region"]: e["publicURL"]
        for s in login(sim)["serviceCatalog"]
        if s["name"] == "cloudServersOpenStack"
        for e in s["endpoints"]
    }
    assert catalog["DFW"].startswith(closed + "/dfw/servers/v2/")
    assert catalog["ORD"].startswith(sim.base_url + "/ord/")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(catalog["DFW"] + "/servers/detail", timeout=5)
    assert control(sim, "PUT", "endpoints/DFW", {"url": None}).json() == {"endpoints": {}}
    assert control(sim, "PUT", "endpoints/DFW", {"url": "ftp://x"}).status_code == 400
    assert control(sim, "GET", "endpoints").json() == {"endpoints": {}}


def test_issued_tokens_include_revoked_ones(sim: Simulator) -> None:
    first, second = token(sim), token(sim, "globex")
    sim.revoke_tokens()
    assert sim.issued_tokens()[-2:] == [first, second]
