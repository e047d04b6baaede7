"""``--server.metadata-label LABEL=KEY`` and ``metadata_labels:``: names, values, precedence."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from exporter.config import ConfigError, load_file, merge_metadata_labels, parse_metadata_label
from exporter.exposition.render import render_server
from exporter.model import MAX_METADATA_LABEL_LENGTH, Server
from tests.expo_helpers import samples
from tests.helpers import account_env, assert_stops_on_sigterm, free_port, run, wait_for

OWNER = (("owner_team", "owner"),)


def test_a_metadata_key_becomes_a_label_on_server_info_only() -> None:
    doc = {"id": "s1", "name": "web", "metadata": {"owner": "team-a", "cost": 7}}
    server = Server.from_api(doc, metadata_labels=(*OWNER, ("cost", "cost"), ("tier", "tier")))
    assert server.labels == (("owner_team", "team-a"), ("cost", "7"))  # absent tier: no label
    hash(server)
    info, *others = render_server(server, "acme", "ORD", False, False)
    assert info == (
        b'rackconnect_server_info{account="acme",region="ORD",server_id="s1",name="web",'
        b'generation="next",owner_team="team-a",cost="7"} 1\n'
    )
    assert not any(b"owner_team" in fragment for fragment in others)


def test_values_are_cut_and_escaped() -> None:
    long = 'a"b\n' + "x" * 500
    server = Server.from_api({"id": "s1", "metadata": {"owner": long}}, metadata_labels=OWNER)
    assert server.labels == (("owner_team", long[:MAX_METADATA_LABEL_LENGTH]),)
    ((_name, labels),) = samples(render_server(server, "acme", "ORD", False, False)[0])
    assert dict(labels)["owner_team"] == long[:MAX_METADATA_LABEL_LENGTH]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bad-label=x", "'bad-label' is not a Prometheus label name"),
        ("1team=x", "'1team' is not a Prometheus label name"),
        ("__team=x", "'__team': names starting with __ are reserved for Prometheus"),
        ("region=x", "'region' is a label the exporter sets itself"),
        ("server_id=x", "'server_id' is a label the exporter sets itself"),
        ("status=x", "'status' is a label the exporter sets itself"),
        ("instance=x", "'instance' is a label the exporter sets itself"),
        ("team", "expected LABEL=KEY, not 'team'"),
        ("team=", "expected LABEL=KEY, not 'team='"),
    ],
)
def test_bad_labels_are_refused_naming_them(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        parse_metadata_label(text)


@pytest.mark.slow
def test_a_bad_flag_exits_3_naming_it() -> None:
    result = run("--server.metadata-label=bad-label=x")
    assert result.returncode == 3
    assert (
        "argument --server.metadata-label: 'bad-label' is not a Prometheus label name"
        in result.stderr
    )
    twice = run(
        "check-config",
        "--server.metadata-label=team=owner",
        "--server.metadata-label=team=group",
        env={"RACKSPACE_USERNAME": "u", "RACKSPACE_API_KEY": "k"},
    )
    assert twice.returncode == 3
    assert "argument --server.metadata-label: 'team' is given twice" in twice.stderr


def test_config_file_labels_are_checked_and_win_over_the_flag(tmp_path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "accounts:\n"
        "  - username: a\n    api_key: k\n"
        "    metadata_labels: {owner_team: team, cost_center: cc}\n"
        "  - username: b\n    api_key: k\n"
    )
    config = merge_metadata_labels(load_file(str(path)), (("owner_team", "owner"), ("env", "env")))
    first, second = config.accounts
    assert first.metadata_labels == (("owner_team", "team"), ("env", "env"), ("cost_center", "cc"))
    assert second.metadata_labels == (("owner_team", "owner"), ("env", "env"))
    path.write_text(
        "accounts:\n  - username: a\n    api_key: k\n    metadata_labels:\n      name: x\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_file(str(path))
    assert caught.value.problems == [
        f"{path}:4: accounts[0].metadata_labels: 'name' is a label the exporter sets itself"
    ]


@pytest.mark.slow
def test_serve_puts_the_owner_on_server_info(sim) -> None:
    """The issue's check: metadata owner: team-a gives owner_team="team-a"."""
    server_id = sim.add_server("globex", "DFW", "owned", {"owner": "team-a"})
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            f"--web.listen-address=127.0.0.1:{port}",
            "--server.metadata-label=owner_team=owner",
        ],
        env=account_env(sim, "globex", "DFW"),
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready")
        body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).content
        infos = {
            dict(labels)["server_id"]: dict(labels)
            for (name, labels) in samples(body)
            if name == "rackconnect_server_info"
        }
        assert infos[server_id]["owner_team"] == "team-a"
        assert any("owner_team" not in labels for labels in infos.values())
        assert_stops_on_sigterm(proc)
    finally:
        proc.kill()
