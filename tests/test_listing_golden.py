"""Listing pages as upstream sends them -> records -> exposition, byte for byte.

The golden files were written by the decoder that came before the typed one, so the same
upstream documents must keep giving the same bytes whatever decodes them.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pytest

from exporter.model import FIRST, NEXT
from exporter.rackspace.cloudservers import Listing, add_page_bytes
from exporter.store import Store

GOLDEN = Path(__file__).parent / "golden"
LABELS = (("env", "environment"), ("owner", "rax:owner"))
STATUSES = ["DEPLOYED", "DEPLOYING", "FAILED", "UNPROCESSABLE", "deployed ", "Odd", None]
MANAGED = ["Complete", "In Progress", "Pending", "Build Error", "complete", "??", None]
NOVA = ["ACTIVE", "BUILD", "ERROR", "active", " rescue ", ""]
FEATURES = [
    "rackconnect_automation_feature_configure_network_stack",
    "rackconnect_automation_feature_manage_software_firewall",
    "rackconnect_automation_feature_provison_public_ip",
    "rackconnect_automation_feature_provision_public_ip",
]
NAMES = ["web-1", 'quo"te', "back\\slash", "new\nline", "ünïcödé 🦄", "", "x" * 300]


def server_doc(rng: random.Random, i: int, generation: str) -> dict:
    """One plausible server document, with the extra fields upstream sends."""
    metadata: dict[str, str] = {"unrelated": "value", "rax:auto_scaling": "no"}
    for key, values in (
        ("rackconnect_automation_status", STATUSES),
        ("rax_service_level_automation", MANAGED),
    ):
        value = rng.choice(values)
        if value is not None:
            metadata[key] = value
    for key in FEATURES:
        if rng.random() < 0.5:
            metadata[key] = rng.choice(["ENABLED", "DISABLED", " enabled", "bogus"])
    if rng.random() < 0.3:
        metadata["rackconnect_unprocessable_reason"] = "reason " * rng.randint(1, 60)
    if rng.random() < 0.6:
        metadata["environment"] = rng.choice(["prod", "staging", "é" * 200])
    if rng.random() < 0.3:
        metadata["rax:owner"] = "team-" + str(i % 7)
    doc: dict = {
        "id": i if generation == FIRST else f"{i:08d}-aaaa-bbbb-cccc-{rng.getrandbits(48):012x}",
        "name": rng.choice(NAMES) + f"-{i}",
        "status": rng.choice(NOVA),
        "metadata": metadata,
        "flavor": {"id": "general1-1", "links": []},
        "addresses": {"public": [{"addr": "198.51.100.7", "version": 4}]},
        "accessIPv4": "198.51.100.7",
        "OS-EXT-STS:task_state": None,
    }
    if generation == NEXT:
        doc["created"] = rng.choice(
            ["2013-07-23T15:44:56Z", "2020-01-02T03:04:05.123456Z", "2021-05-06T07:08:09+02:00"]
        )
        doc["updated"] = rng.choice(["2024-02-03T04:05:06Z", "not a date", ""])
    return doc


def pages() -> list[tuple[str, bytes]]:
    """(generation, page bytes): next-gen pages, a deleted entry, odd types, first-gen."""
    rng = random.Random(14)
    out = []
    for page in range(2):
        docs = [server_doc(rng, page * 30 + i, NEXT) for i in range(30)]
        out.append((NEXT, json.dumps({"servers": docs, "servers_links": []}).encode()))
    odd = [server_doc(rng, 100 + i, NEXT) for i in range(6)]
    odd[0]["name"] = 12
    odd[1]["metadata"] = ["not", "an", "object"]
    odd[2]["metadata"]["rackconnect_automation_status"] = 7
    odd[3]["created"] = None
    odd[4]["status"] = "DELETED"
    odd[5]["metadata"]["rax:owner"] = {"nested": True}
    # A lone surrogate escape, as the stdlib encoder writes it.
    odd.append({"id": "surrogate", "name": "\ud800", "metadata": {"environment": "\udfff"}})
    out.append((NEXT, json.dumps({"servers": odd}).encode()))
    out.append(
        (
            FIRST,
            json.dumps({"servers": [server_doc(rng, 500 + i, FIRST) for i in range(8)]}).encode(),
        )
    )
    return out


def exposition(openmetrics: bool) -> bytes:
    """The whole exposition for the fixed pages, build_info left out (it names versions)."""
    store = Store(60, clock=lambda: 1_790_000_000.0)
    writer = store.open_account("acme")
    writer.known("123456", True, True)
    for region, generation in (("ORD", NEXT), ("GLOBAL", FIRST)):
        listing = Listing()
        for gen, data in pages():
            if gen == generation:
                add_page_bytes(data, "https://x.example/servers/detail", listing, gen, LABELS)
        writer.succeeded(region, listing.servers, 0.5)
    snapshot = store.current
    body = snapshot.body(openmetrics)
    assert gzip.decompress(snapshot.body(openmetrics, compressed=True)) == body
    return b"".join(line for line in body.splitlines(True) if b"build_info" not in line)


@pytest.mark.parametrize(("openmetrics", "name"), [(False, "listing.prom"), (True, "listing.om")])
def test_the_same_pages_render_the_same_bytes(openmetrics: bool, name: str) -> None:
    body = exposition(openmetrics)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(body)
    assert body == path.read_bytes()
