"""The exposition: golden files, promtool, parse-back, escaping and the render cache."""

from __future__ import annotations

import os
import platform
import random
import re
from pathlib import Path

import pytest

from exporter import revision
from exporter.exposition import render
from exporter.exposition.families import PER_SERVER_FAMILIES, SERVER_READY
from exporter.exposition.gzipparts import Body, Part
from exporter.exposition.history import Change, RegionHistory
from exporter.exposition.render import RegionRenderer
from exporter.exposition.sections import render_parts
from exporter.model import AccountView, RegionView, Server
from tests.expo_helpers import families, inflated, promtool_check, samples, value

GOLDEN = Path(__file__).parent / "golden"
PY = platform.python_version()


def server(server_id: str, name: str, **metadata: str) -> Server:
    return Server.from_api(
        {"id": server_id, "name": name, "created": "2026-11-01T10:00:00Z", "metadata": metadata}
    )


FLEET = [
    server(
        "11111111-0000-0000-0000-000000000001",
        "web-ord-01",
        rackconnect_automation_status="DEPLOYED",
        rackconnect_automation_feature_configure_network_stack="ENABLED",
        rackconnect_automation_feature_manage_software_firewall="ENABLED",
        rackconnect_automation_feature_provison_public_ip="ENABLED",
        rax_service_level_automation="Complete",
    ),
    server(
        "11111111-0000-0000-0000-000000000002",
        "db-ord-01",
        rackconnect_automation_status="UNPROCESSABLE",
        rackconnect_unprocessable_reason='region "DFW" does not match ORD',
        rax_service_level_automation="Pending",
    ),
    server("11111111-0000-0000-0000-000000000003", "new-ord-01"),
]


def fixed_exposition(openmetrics: bool) -> bytes:
    renderer = RegionRenderer("acme", "ORD")
    fragments = renderer.render(FLEET, rackconnect=True, managed=True)
    history = RegionHistory().record(
        [
            Change("rackconnect", "DEPLOYING", "DEPLOYED", 610.0),
            Change("managed", "none", "Pending", None),
        ]
    )
    fragments += history.render("acme", "ORD", rackconnect=True, managed=True)
    account = AccountView(
        "acme",
        "123456",
        rackconnect=True,
        managed=True,
        known=True,
        regions=(
            RegionView("ORD", True, 1_790_000_000.0, 0.25, parts=fragments),
            RegionView("DFW", False, None, 1.5),
        ),
    )
    parts = render_parts(
        [account],
        errors={("acme", "DFW", "timeout"): 2, ("acme", "ORD", "timeout"): 0},
        requests={("acme", "", "identity", "200"): 1, ("acme", "ORD", "servers", "200"): 3},
        interval=60.0,
        openmetrics=openmetrics,
    )
    return Body(parts).joined(compressed=False)


@pytest.mark.parametrize(
    ("openmetrics", "golden"), [(False, "exposition.prom"), (True, "exposition.om")]
)
def test_golden(openmetrics: bool, golden: str) -> None:
    body = (
        fixed_exposition(openmetrics)
        .decode()
        .replace(f'python_version="{PY}"', 'python_version="X"')
        .replace(f'revision="{revision()}"', 'revision="X"')
    )
    path = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(body)
    assert body == path.read_text()


def test_golden_text_passes_promtool() -> None:
    promtool_check((GOLDEN / "exposition.prom").read_bytes())


def test_parse_back_text_and_openmetrics() -> None:
    for openmetrics in (False, True):
        parsed = samples(fixed_exposition(openmetrics), openmetrics)
        base = {"account": "acme", "region": "ORD"}
        one = "11111111-0000-0000-0000-000000000001"
        two = "11111111-0000-0000-0000-000000000002"
        assert value(parsed, "rackconnect_automation_status", server_id=one, status="DEPLOYED") == 1
        assert value(parsed, "rackconnect_automation_status", server_id=one, status="FAILED") == 0
        assert value(parsed, "rackconnect_server_ready", server_id=one) == 1
        assert value(parsed, "rackconnect_server_ready", server_id=two) == 0
        assert (
            value(
                parsed,
                "rackconnect_automation_unprocessable_info",
                server_id=two,
                reason='region "DFW" does not match ORD',
            )
            == 1
        )
        assert (
            value(
                parsed,
                "rackconnect_automation_feature_enabled",
                server_id=one,
                feature="provision_public_ip",
            )
            == 1
        )
        assert value(parsed, "rackconnect_up", **base) == 1
        assert value(parsed, "rackconnect_up", account="acme", region="DFW") == 0
        assert value(parsed, "rackconnect_poll_errors_total", region="DFW", reason="timeout") == 2
        assert (
            value(parsed, "rackconnect_server_created_timestamp_seconds", server_id=one)
            == 1_793_527_200
        )  # 2026-11-01T10:00:00Z


def test_openmetrics_types() -> None:
    kinds = families(fixed_exposition(True), openmetrics=True)
    assert kinds["rackconnect_poll_errors"] == "counter"
    assert kinds["rackconnect_server"] == "info"
    assert kinds["rackconnect_automation_status"] == "gauge"
    assert fixed_exposition(True).endswith(b"# EOF\n")


def test_help_says_values_are_cached() -> None:
    body = fixed_exposition(False).decode()
    helps = re.findall(r"^# HELP (\S+) (.*)$", body, re.MULTILINE)
    cached = {name for name, text in helps if "Cached: refreshed every poll interval (1m)." in text}
    assert "rackconnect_automation_status" in cached
    assert "rackconnect_up" in cached
    assert "rackconnect_exporter_build_info" not in cached


HOSTILE = [
    'quote " and backslash \\ and newline \n end',
    "tab\tand\r carriage",
    "unicode: ñandú 服务器 🚀",
    "\x00\x01\x7f control",
    "lone surrogate \ud800 here",
    "x" * 10_000,
    '}{,="',
]


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_and_reasons(name: str) -> None:
    hostile = Server.from_api(
        {
            "id": "id-" + str(len(name)),
            "name": name,
            "metadata": {
                "rackconnect_automation_status": "UNPROCESSABLE",
                "rackconnect_unprocessable_reason": name,
            },
        }
    )
    fragments = RegionRenderer('acc"ount', "ORD").render([hostile], True, False)
    region = RegionView("ORD", parts=fragments)
    parts = render_parts(
        [AccountView('acc"ount', regions=(region,))],
        errors={},
        requests={},
        interval=60,
        openmetrics=False,
    )
    body = Body(parts).joined(compressed=False)
    parsed = samples(body)
    promtool_check(body)
    expected = name.encode("utf-8", "replace").decode("utf-8")
    (info,) = [lbl for (n, lbl) in parsed if n == "rackconnect_server_info"]
    assert dict(info)["name"] == expected
    assert dict(info)["account"] == 'acc"ount'


def test_unchanged_servers_are_not_rendered_again() -> None:
    renderer = RegionRenderer("acme", "ORD")
    first = renderer.render(FLEET, True, True)
    assert renderer.rendered == 3
    changed = [
        *FLEET[:2],
        server(
            "11111111-0000-0000-0000-000000000003",
            "new-ord-01",
            rackconnect_automation_status="DEPLOYING",
        ),
    ]
    second = renderer.render(changed, True, True)
    assert renderer.rendered == 1
    assert inflated(first) != inflated(second)
    # the unchanged servers' lines are copied from where they were, byte for byte
    fresh = RegionRenderer("acme", "ORD").render(changed, True, True)
    assert inflated(second) == inflated(fresh)
    assert renderer.render(changed, True, True) is second
    # a change of the account's roles re-renders readiness: a server without keys is
    # ready on an account with neither RackConnect nor Managed Operations
    ready_line = 'rackconnect_server_ready{account="acme",region="ORD",server_id="%s"} %d\n'
    at = PER_SERVER_FAMILIES.index(SERVER_READY)
    assert (ready_line % (FLEET[2].id, 0)).encode() in b"".join(inflated(first)[at])
    third = renderer.render(FLEET, False, False)
    assert (ready_line % (FLEET[2].id, 1)).encode() in b"".join(inflated(third)[at])
    assert renderer.rendered == 3
    # removing and reordering reuse the cached lines too
    fourth = renderer.render([FLEET[2], FLEET[0]], False, False)
    assert renderer.rendered == 0
    fresh = RegionRenderer("acme", "ORD").render([FLEET[2], FLEET[0]], False, False)
    assert inflated(fourth) == inflated(fresh)


def deployed(count: int) -> list[Server]:
    """``count`` servers in order of id, RackConnect deployed."""
    return [
        server(
            f"22222222-0000-0000-0000-{n:012d}",
            f"web-{n}",
            rackconnect_automation_status="DEPLOYED",
        )
        for n in range(count)
    ]


def test_a_changed_server_inflates_only_the_families_whose_lines_change(monkeypatch) -> None:
    """The other families keep their parts, neither inflated nor compressed again."""
    fleet = deployed(40)
    renderer = RegionRenderer("acme", "ORD")
    first = renderer.render(fleet, True, True)
    opened: list[Part] = []
    plain = Part.plain
    monkeypatch.setattr(Part, "plain", lambda part: opened.append(part) or plain(part))
    failed = server(fleet[10].id, "web-10", rackconnect_automation_status="FAILED")
    second = renderer.render([*fleet[:10], failed, *fleet[11:]], True, True)
    changed = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b]
    assert 0 < len(changed) < len(first) // 2
    assert opened  # the changed families' unchanged lines come from their old parts
    assert {id(p) for p in opened} <= {id(p) for i in changed for p in first[i]}
    fresh = RegionRenderer("acme", "ORD").render([*fleet[:10], failed, *fleet[11:]], True, True)
    assert inflated(second) == inflated(fresh)


def test_deleted_servers_leave_the_cache() -> None:
    renderer = RegionRenderer("acme", "ORD")
    renderer.render(FLEET, True, True)
    renderer.render(FLEET[:1], True, True)
    assert set(renderer._rows) == {FLEET[0].id}
    assert renderer.records == (FLEET[0],)


@pytest.mark.parametrize("chunk", [render.CHUNK, 4])
def test_cached_lines_survive_any_sequence_of_changes(chunk: int, monkeypatch) -> None:
    """Inserts, deletes, changes and reorders: always what a fresh renderer makes, whether
    the region is one chunk or many."""
    monkeypatch.setattr(render, "CHUNK", chunk)
    monkeypatch.setattr(render, "CHUNK_MOST", 4 * chunk)
    rng = random.Random(14)
    chunks = 0
    fleet = deployed(40)
    renderer = RegionRenderer("acme", "ORD")
    for step in range(60):
        action = rng.choice(("insert", "delete", "change", "reorder", "none"))
        if action == "insert":
            fleet.insert(rng.randrange(len(fleet) + 1), server(f"new-{step}", f"new-{step}"))
        elif action == "delete" and fleet:
            del fleet[rng.randrange(len(fleet))]
        elif action == "change" and fleet:
            at = rng.randrange(len(fleet))
            status = rng.choice(("DEPLOYING", "FAILED", "DEPLOYED"))
            fleet[at] = server(
                fleet[at].id, f"changed-{step}", rackconnect_automation_status=status
            )
        elif action == "reorder":
            rng.shuffle(fleet)
        got = renderer.render(fleet, True, step % 7 != 0)
        fresh = RegionRenderer("acme", "ORD").render(fleet, True, step % 7 != 0)
        assert inflated(got) == inflated(fresh), step
        chunks = max(chunks, len(got[0]))
    assert chunks > 4 if chunk == 4 else chunks == 1
