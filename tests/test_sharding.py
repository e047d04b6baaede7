"""Splitting accounts between replicas: the hash, the flags, and a sharded exporter."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
import yaml

from exporter.cli import build_parser
from exporter.commands import flags
from exporter.commands.serve import run_exporter
from exporter.config import Config
from exporter.polling.sharding import parse_shard_index, select, shard_of
from exporter.store import Store
from tests.conftest import account_config
from tests.expo_helpers import promtool_check, samples, series, value
from tests.helpers import run, wait_for

pytestmark = pytest.mark.slow

NAMES = [f"customer-{i:04d}" for i in range(2000)]


def test_every_account_has_exactly_one_shard_and_shards_are_even() -> None:
    shards = [select(NAMES, str, i, 4) for i in range(4)]
    assert sorted(n for shard in shards for n in shard) == sorted(NAMES)
    assert all(400 < len(shard) < 600 for shard in shards)
    assert select(NAMES, str, 0, 1) == NAMES


def test_the_split_is_stable_and_moves_little_when_shards_are_added() -> None:
    before = {n: shard_of(n, 4) for n in NAMES}
    assert before == {n: shard_of(n, 4) for n in reversed(NAMES)}
    after = {n: shard_of(n, 5) for n in NAMES}
    moved = [n for n in NAMES if before[n] != after[n]]
    assert all(after[n] == 4 for n in moved)  # only to the new shard
    assert 300 < len(moved) < 500  # about a fifth


@pytest.mark.parametrize(
    ("text", "index"), [("0", 0), ("3", 3), ("rackconnect-exporter-2", 2), ("web-10", 10)]
)
def test_shard_index_from_a_number_or_a_pod_name(text: str, index: int) -> None:
    assert parse_shard_index(text) == index


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard.index", "3", "--shard.total", "3"], "argument --shard.index: must be below"),
        (["--shard.index", "exporter"], "argument --shard.index: expected a number"),
        (["--shard.total", "0"], "argument --shard.total: must be at least 1"),
        (["--poll.full-every", "0"], "argument --poll.full-every: must be at least 1"),
        (["--poll.concurrency", "x"], "argument --poll.concurrency: expected a whole number"),
    ],
)
def test_bad_shard_and_poll_flags_exit_3_naming_the_flag(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 3
    assert message in result.stderr


def scrape_replica(config: Config, *options: str) -> dict:
    """Run ``serve`` with these flags until ready; its exposition, parsed."""
    args = build_parser().parse_args(["serve", "--web.listen-address=127.0.0.1:0", *options])
    web = flags.web(args)
    assert web is not None
    stop = threading.Event()
    urls: list[str] = []
    thread = threading.Thread(
        target=run_exporter,
        args=(config, flags.poll_settings(args), web),
        kwargs={
            "shard": flags.shard(args),
            "announce": lambda h, u=urls: u.append(h.url),
            "stop": stop,
        },
    )
    thread.start()
    try:
        while not urls:
            thread.join(0.05)
        wait_for(urls[0] + "/-/ready", timeout=10)
        return samples(requests.get(urls[0] + "/metrics", timeout=5).content)
    finally:
        stop.set()
        thread.join(10)


def test_each_replica_exposes_only_its_share_and_which_shard_it_is(sim) -> None:
    config = Config(tuple(account_config(sim, a.name) for a in sim.accounts))
    seen: dict[int, set[str]] = {}
    for index in range(2):
        parsed = scrape_replica(config, f"--shard.index=exporter-{index}", "--shard.total=2")
        seen[index] = {dict(lbl)["account"] for n, lbl in parsed if n == "rackconnect_up"}
        assert value(parsed, "rackconnect_exporter_shard_ordinal", shard_ordinal=str(index)) == (
            index
        )
        assert len(series(parsed, "rackconnect_exporter_shard_ordinal")) == 1
        assert value(parsed, "rackconnect_exporter_total_shards") == 2
    names = {a.name for a in sim.accounts}
    assert seen[0] | seen[1] == names
    assert not seen[0] & seen[1]
    assert seen[0] == {n for n in names if shard_of(n, 2) == 0}
    unsharded = scrape_replica(config)
    assert {a for n, lbl in unsharded if n == "rackconnect_up" for a in [dict(lbl)["account"]]} == (
        names
    )
    assert not [n for n, _ in unsharded if "shard" in n]


@pytest.mark.slow
def test_the_shard_families_pass_promtool() -> None:
    body = Store(60, shard=(2, 3)).current.body()
    assert promtool_check(body) == ""
    assert value(samples(body), "rackconnect_exporter_shard_ordinal", shard_ordinal="2") == 2
    assert value(samples(body), "rackconnect_exporter_total_shards") == 3


def test_the_sharded_kubernetes_example_is_valid_and_consistent() -> None:
    folder = Path(__file__).parent.parent / "deploy" / "kubernetes" / "sharded"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects = [yaml.safe_load((folder / name).read_text()) for name in kustomization["resources"]]
    objects.append(yaml.safe_load((folder / "secret.example.yaml").read_text()))
    validate = pytest.importorskip("kubernetes_validate")
    for obj in objects:
        if not obj["apiVersion"].startswith("monitoring.coreos.com/"):  # CRDs have no schema
            validate.validate(obj, "1.30.0", strict=True)
    (statefulset,) = [o for o in objects if o["kind"] == "StatefulSet"]
    (service,) = [o for o in objects if o["kind"] == "Service"]
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    flags = dict(arg.split("=", 1) for arg in container["args"])
    assert int(flags["--shard.total"]) == statefulset["spec"]["replicas"]
    assert flags["--shard.index"] == "$(POD_NAME)"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # the flags parse exactly as the pods will pass them
    pod = f"{statefulset['metadata']['name']}-2"
    args = build_parser().parse_args(
        ["serve", *(a.replace("$(POD_NAME)", pod) for a in container["args"])]
    )
    assert (args.shard_index, args.shard_total) == (2, 3)
    assert yaml.safe_load((folder / "scrape.example.yml").read_text())["scrape_configs"]
