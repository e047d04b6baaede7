"""Finding RackConnect v3.0: the catalog's rax:rackconnect entry, the rackconnect_v3 setting,
and v2.0 metadata not expected in a v3.0 region (by ``wait`` and by the exporter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import AccountConfig, ConfigError, load_file
from exporter.rackspace.client import ApiClient
from exporter.rackspace.identity import make_token_cache, parse_access
from exporter.simulator import Scenario, Simulator
from tests.conftest import account_config
from tests.expo_helpers import value
from tests.test_wait_v3 import v3_account


@pytest.fixture
def cloud():
    simulator = Simulator(Scenario(accounts=[v3_account()]), step_interval=None)
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def test_the_access_keeps_the_v3_endpoints_and_v2_is_not_expected_there(cloud) -> None:
    client = ApiClient(5)
    access = make_token_cache(client, account_config(cloud, "vee")).access()
    client.close()
    assert list(access.rackconnect_v3) == ["DFW"]
    assert access.rackconnect_v3["DFW"].endswith("/dfw/rackconnect/v3/400004")
    auto = account_config(cloud, "vee")
    assert access.v3_regions(auto) == ("DFW",)
    v2 = access.v2_regions(auto)
    assert v2 is not None
    assert "DFW" not in v2
    assert {"ORD", "GLOBAL"} <= set(v2)
    off = account_config(cloud, "vee", rackconnect_v3=())
    assert (access.v3_regions(off), access.v2_regions(off)) == ((), None)
    # The configuration's word wins: true, or the region named.
    assert access.v2_regions(account_config(cloud, "vee", rackconnect=True)) is None
    named = account_config(cloud, "vee", rackconnect=True, rackconnect_regions=("DFW",))
    assert access.v2_regions(named) == ("DFW",)
    listed = account_config(cloud, "vee", rackconnect_v3=("ORD",))
    assert access.v3_regions(listed) == ("ORD",)


def test_an_access_without_v3_has_none() -> None:
    doc = {
        "access": {
            "token": {"id": "t", "expires": "2030-01-01T00:00:00Z", "tenant": {"id": "1"}},
            "serviceCatalog": [{"name": "rackconnect", "type": "other", "endpoints": []}],
        }
    }
    access = parse_access(doc)
    assert access.rackconnect_v3 == {}
    assert access.v2_regions(AccountConfig(name="a", username="a", api_key="k")) is None


def test_config_rackconnect_v3_setting(tmp_path: Path) -> None:
    path = tmp_path / "v3.yml"
    path.write_text(
        "accounts:\n"
        "  - username: a\n    api_key: k\n"
        "  - username: b\n    api_key: k\n    rackconnect_v3: false\n"
        "  - username: c\n    api_key: k\n    rackconnect_v3: [dfw, LON]\n"
        "  - username: d\n    api_key: k\n    rackconnect_v3: auto\n"
    )
    accounts = load_file(str(path)).accounts
    assert [a.rackconnect_v3 for a in accounts] == [None, (), ("DFW", "LON"), None]
    path.write_text(
        "accounts:\n"
        "  - username: a\n    api_key: k\n    rackconnect_v3: true\n"
        "  - username: b\n    api_key: k\n    rackconnect_v3: [XYZ]\n"
        "  - username: c\n    api_key: k\n    rackconnect_v3: []\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_file(str(path))
    assert caught.value.problems == [
        f"{path}:4: accounts[0].rackconnect_v3: must be auto, false or a list of regions, not True",
        f"{path}:7: accounts[1].rackconnect_v3: unknown region 'XYZ' "
        "(expected some of: ORD, DFW, IAD, LON, SYD, HKG)",
        f"{path}:10: accounts[2].rackconnect_v3: must list at least one region "
        "(or be left out for every region)",
    ]


def test_the_exporter_expects_no_v2_metadata_in_a_v3_region(cloud, make_exporter) -> None:
    sid = cloud.add_server("vee", "DFW", "plain", {})
    waiting = cloud.add_server("vee", "ORD", "waiting", {})
    exporter = make_exporter(account_config(cloud, "vee"))
    exporter.poll()
    parsed = exporter.scrape()
    ids = {"account": "vee"}
    assert value(parsed, "rackconnect_server_ready", server_id=sid, **ids) == 1
    assert value(parsed, "rackconnect_server_ready", server_id=waiting, **ids) == 0
    assert value(parsed, "rackconnect_region_info", region="DFW", rackconnect="false") == 1
    assert value(parsed, "rackconnect_region_info", region="ORD", rackconnect="true") == 1
