"""``status`` and the landing page on a RackConnect v3.0 account, against the simulator.

The account ``vee`` has RackConnect v3.0 in DFW and none in ORD. The simulator starts its
DFW servers wired, except one of each: a public IP ``ADD_FAILED``, a public IP ``ADDING``,
a pool membership ``ADD_FAILED`` and one ``ADDING``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from html import unescape
from types import SimpleNamespace

import pytest

from exporter.commands.status import COLUMNS, render_json, rows
from exporter.commands.status import poll_and_print as status
from exporter.config import Config
from exporter.model import AccountView, PoolNode, PublicIp, RegionView, Server
from exporter.simulator import Fault, Scenario, Simulator
from exporter.simulator.rcv3 import IP_DETAIL, NETWORK_DETAIL
from exporter.web.landing import render_landing
from tests.conftest import account_config
from tests.test_simulator_v3 import v3_scenario


@pytest.fixture
def cloud() -> Iterator[Simulator]:
    simulator = Simulator(v3_scenario(), step_interval=None)
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def status_of(sim: Simulator, **options: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    config = Config((account_config(sim, "vee"),))
    code = status(config, timeout=5, out=out, err=err, **options)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def resources(sim: Simulator, kind: str, status: str) -> list[dict]:
    found = sim.rackconnect_v3("vee", "DFW")["resources"]
    return [r for r in found if r["kind"] == kind and r["status"] == status]


def test_json_gives_each_v3_server_its_public_ips_and_pool_nodes(cloud) -> None:
    code, out, err = status_of(cloud, output="json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    servers = {s["server_id"]: s for s in doc["servers"]}
    (failed_ip,) = resources(cloud, "public_ip", "ADD_FAILED")
    failed = servers[failed_ip["server_id"]]
    assert failed["ready"] is False
    assert failed["public_ips"] == [
        {
            "id": failed_ip["id"],
            "status": "ADD_FAILED",
            "address": None,
            "status_detail": IP_DETAIL,
        }
    ]
    (node,) = failed["pool_nodes"]
    assert set(node) == {"id", "status", "pool_id", "status_detail"}
    (failed_node,) = resources(cloud, "pool_node", "ADD_FAILED")
    assert servers[failed_node["server_id"]]["pool_nodes"][0] == {
        "id": failed_node["id"],
        "status": "ADD_FAILED",
        "pool_id": failed_node["pool_id"],
        "status_detail": NETWORK_DETAIL,
    }
    wired = [s for s in servers.values() if s["region"] == "DFW" and s["ready"]]
    assert len(wired) == 2  # the six DFW servers less the four unfinished ones
    for s in wired:
        assert [i["status"] for i in s["public_ips"]] == ["ACTIVE"]
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", s["public_ips"][0]["address"])
        assert [n["status"] for n in s["pool_nodes"]] == ["ACTIVE"]
    # Outside a v3.0 region nothing of v3.0 is added.
    (ord_server,) = [s for s in servers.values() if s["region"] == "ORD"]
    assert "public_ips" not in ord_server
    assert "pool_nodes" not in ord_server
    regions = {r["region"]: r for r in doc["regions"]}
    assert regions["DFW"]["rackconnect_v3_up"] is True
    assert "rackconnect_v3_up" not in regions["ORD"]


def test_table_shows_the_v3_state_and_names_the_failed_resource(cloud) -> None:
    code, out, _ = status_of(cloud)
    assert code == 0
    header, *body, summary = out.splitlines()
    assert header.split() == [*COLUMNS, "RACKCONNECT_V3", "REASON"]
    (failed_ip,) = resources(cloud, "public_ip", "ADD_FAILED")
    row = next(line for line in body if failed_ip["server_id"] in line)
    assert " public_ips=ADD_FAILED pool_nodes=ACTIVE " in row
    assert row.endswith(f"RackConnect v3.0 public IP {failed_ip['id']} is ADD_FAILED: {IP_DETAIL}")
    (adding,) = resources(cloud, "pool_node", "ADDING")
    row = next(line for line in body if adding["server_id"] in line)
    assert row.split()[8] == "no"
    assert row.endswith(f"RackConnect v3.0 waiting for pool node {adding['id']} ADDING")
    ord_row = next(line for line in body if line.split()[1] == "ORD")
    assert ord_row.split()[8:] == ["yes", "-", "-"]
    assert summary == "7 server(s), 3 ready, 4 not ready"


def test_a_failed_v3_poll_is_named_and_exits_1(cloud) -> None:
    """Cloud Servers still answer: the servers print, the v3.0 failure is not hidden."""
    status_of(cloud)
    cloud.add_fault(Fault(kind="status", api="rackconnect_v3", region="DFW", status=500))
    code, out, err = status_of(cloud, output="json")
    assert code == 1
    assert err == (
        "status: vee/DFW: RackConnect v3.0 poll failed "
        "(public IPs and pool memberships shown as of its last good poll)\n"
    )
    regions = {r["region"]: r for r in json.loads(out)["regions"]}
    assert (regions["DFW"]["up"], regions["DFW"]["rackconnect_v3_up"]) == (True, False)
    # Only ORD asked for: its answer is whole.
    code, _, _ = status_of(cloud, regions=["ORD"])
    assert code == 0


def test_landing_page_names_the_failed_resource_and_its_detail(cloud, make_exporter) -> None:
    exporter = make_exporter(account_config(cloud, "vee"))
    exporter.poll()
    html = exporter.get("/").text
    table = html.split("<table id='not-ready'>")[1].split("</table>", maxsplit=1)[0]
    rows = table.split("<tr")[2:]
    assert len(rows) == 4
    (failed_ip,) = resources(cloud, "public_ip", "ADD_FAILED")
    # Failures first; each row: account, region, name, id, status, RackConnect,
    # Managed Operations, reason, age.
    failed = [r for r in rows if failed_ip["server_id"] in r]
    assert len(failed) == 1
    assert failed[0].startswith(" class='failed'")
    cells = [unescape(c) for c in re.findall(r"<td>(.*?)</td>", failed[0])]
    assert cells[4] == "ACTIVE"
    assert cells[7] == f"RackConnect v3.0 public IP {failed_ip['id']} is ADD_FAILED: {IP_DETAIL}"
    (adding,) = resources(cloud, "public_ip", "ADDING")
    pending = next(r for r in rows if adding["server_id"] in r)
    assert f"waiting for public IP {adding['id']} ADDING" in unescape(pending)
    accounts = html.split("<table id='accounts'>")[1].split("</table>", maxsplit=1)[0]
    assert "<td>DFW</td><td class=''>up; RackConnect v3.0 up</td>" in accounts
    assert "<td>ORD</td><td class=''>up</td>" in accounts


def test_v2_only_accounts_keep_their_table(sim) -> None:
    """No RACKCONNECT_V3 column where no region has v3.0."""
    out, err = io.StringIO(), io.StringIO()
    code = status(Config((account_config(sim, "acme"),)), timeout=5, out=out, err=err)
    assert code == 0
    assert "RACKCONNECT_V3" not in out.getvalue()
    assert "public_ips" not in out.getvalue()


def test_scale_scenario_gives_every_server_a_public_ip_and_a_pool_node() -> None:
    """The benchmark's fleet with --rackconnect-v3."""
    scenario = Scenario.scale(servers=30, regions=("ORD", "DFW"), rackconnect_v3=True)
    (account,) = scenario.accounts
    assert account.rackconnect_v3 == ("ORD", "DFW")
    simulator = Simulator(scenario, step_interval=None)
    found = simulator.rackconnect_v3("scale")["resources"]
    for kind in ("public_ip", "pool_node"):
        assert sorted(r["server_id"] for r in found if r["kind"] == kind) == sorted(
            s["id"] for s in simulator.servers("scale")
        )
    assert Scenario.scale(servers=3).accounts[0].rackconnect_v3 == ()


def test_records_with_a_failed_removal_and_an_unknown_state() -> None:
    """From records built here: REMOVE_FAILED is named with its detail, UNKNOWN is pending."""
    node = PoolNode("n-1", "pool-1", "s-1", "REMOVE_FAILED", "Pool is locked", None, None)
    ip = PublicIp("ip-1", "s-2", "", "UNKNOWN", None, None, None)
    base = {"generation": "next", "created": None, "automation_status": None, "features": ()}
    servers = (
        Server("s-1", "web-1", **base, managed_status=None, unprocessable_reason=None,
               status="ACTIVE", pool_nodes=(node,)),
        Server("s-2", "web-2", **base, managed_status=None, unprocessable_reason=None,
               status="ACTIVE", public_ips=(ip,)),
    )  # fmt: skip
    account = AccountView(
        "vee",
        regions=(RegionView("DFW", up=True, servers=servers, v3_up=True),),
        rackconnect_v3_regions=("DFW",),
    )
    snapshot = SimpleNamespace(accounts=(account,))
    found = rows(snapshot)  # type: ignore[arg-type]
    assert [r.ready for r in found] == [False, False]
    assert found[0].reason == (
        "RackConnect v3.0 pool node n-1 of pool pool-1 is REMOVE_FAILED: Pool is locked"
    )
    assert found[1].reason == "RackConnect v3.0 waiting for public IP ip-1 UNKNOWN"
    doc = json.loads(render_json(found, snapshot))  # type: ignore[arg-type]
    assert doc["servers"][0]["pool_nodes"] == [
        {
            "id": "n-1",
            "status": "REMOVE_FAILED",
            "pool_id": "pool-1",
            "status_detail": "Pool is locked",
        }
    ]
    assert doc["servers"][1]["public_ips"][0]["address"] is None
    page = render_landing(snapshot, "/metrics").decode()  # type: ignore[arg-type]
    assert "is REMOVE_FAILED: Pool is locked</td>" in page
    assert "Not ready (2)" in page


def test_landing_page_counts_a_v3_regions_servers_by_their_resources(
    cloud, make_exporter, sim
) -> None:
    exporter = make_exporter(account_config(cloud, "vee"))
    exporter.poll()
    table = exporter.get("/").text.split("<table id='status'>")[1].split("</table>")[0]
    assert "<th colspan='4'>RackConnect v3.0</th>" in table
    row = next(r for r in table.split("<tr") if "<td>vee</td><td>DFW" in r)
    servers, _ready, *counts = re.findall(r"<td class='n(?: bad)?'>(\d+)</td>", row)
    wired, pending, failed, none = (int(c) for c in counts[-4:])
    assert (pending, failed, none) == (2, 2, 0)
    assert wired + pending + failed == int(servers)
    assert "<td class='n bad'>2</td><td class='n'>0</td></tr>" in row  # failed stands out
    ord_row = next(r for r in table.split("<tr") if "<td>vee</td><td>ORD" in r)
    assert ord_row.endswith("<td></td>" * 4 + "</tr>")  # not a v3.0 region
    # An account without v3.0 keeps the table as it was.
    v2 = make_exporter(account_config(sim, "acme"))
    v2.poll()
    assert "RackConnect v3.0" not in v2.get("/").text.split("<table id='status'>")[1]
