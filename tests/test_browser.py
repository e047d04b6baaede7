"""The landing page in a real browser: Debian's headless Chromium loads / from the demo.

The counts and the not-ready table a person reads must match the exporter's own metrics.
The screenshot is kept as artifacts/landing.png.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ops_helpers import ARTIFACTS, Demo, binary, run, run_demo, wait_until

pytestmark = pytest.mark.slow

WINDOW = (1280, 1024)
RACKCONNECT = ["DEPLOYING", "DEPLOYED", "FAILED", "UNPROCESSABLE", "UNKNOWN"]
MANAGED = ["Pending", "In Progress", "Complete", "Build Error", "Authentication Error", "UNKNOWN"]
NO_KEY = "no key"
V3 = ["wired", "pending", "failed", "none"]


class Tables(HTMLParser):
    """Collects every table of a page by id, as rows of cell texts, and the h2 headings."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headings: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in {"td", "th"} and self._table is not None:
            self._cell = []
        elif tag == "h2":
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in {"td", "th"} and self._table is not None and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "h2" and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._heading):
            if part is not None:
                part.append(data)


def chromium(*args: str, profile: Path) -> str:
    """Run headless Chromium with the flags a CI box needs; return its stdout."""
    result = run(
        [
            binary("chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Page load failed" not in result.stderr, result.stderr[-3000:]
    return result.stdout


def fleet_from_metrics(demo: Demo) -> dict[str, dict[str, str]]:
    """Per server id: account, region, name, Nova, RackConnect and Managed status, ready."""
    servers: dict[str, dict[str, str]] = {}
    v3_regions: set[tuple[str, str]] = set()
    v3_states: Counter[tuple[str, str]] = Counter()  # (server id, state) -> series of value 1
    for family in text_string_to_metric_families(demo.metrics()):
        for sample in family.samples:
            if sample.name == "rackconnect_v3_up":
                v3_regions.add((sample.labels["account"], sample.labels["region"]))
            server_id = sample.labels.get("server_id")
            if server_id is None:
                continue
            if sample.name.startswith("rackconnect_v3_") and sample.name.endswith("_status"):
                v3_states[server_id, sample.labels["status"]] += int(sample.value)
            server = servers.setdefault(
                server_id,
                {"status": NO_KEY, "rackconnect": NO_KEY, "managed": NO_KEY, "ready": "?"},
            )
            if sample.name == "rackconnect_server_info":
                server |= {k: sample.labels[k] for k in ("account", "region", "name")}
            elif sample.name == "rackconnect_automation_status" and sample.value == 1:
                server["rackconnect"] = sample.labels["status"]
            elif sample.name == "rackconnect_managed_operations_status" and sample.value == 1:
                server["managed"] = sample.labels["status"]
            elif sample.name == "rackconnect_server_status" and sample.value == 1:
                server["status"] = sample.labels["status"]
            elif sample.name == "rackconnect_server_ready":
                server["ready"] = str(int(sample.value))
    for server_id, server in servers.items():
        if (server.get("account"), server.get("region")) in v3_regions:
            states = {state for (i, state), n in v3_states.items() if i == server_id and n}
            server["v3"] = (
                "none" if not states
                else "failed" if states & {"ADD_FAILED", "REMOVE_FAILED"}
                else "wired" if states == {"ACTIVE"}
                else "pending"
            )  # fmt: skip
    return servers


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tables, dict[str, dict[str, str]], str]:
    """The landing page as Chromium rendered it, the fleet per the metrics, and the forced id."""
    tmp = tmp_path_factory.mktemp("browser")
    with run_demo(tmp) as demo:
        # Make one healthy server fail, so the page has to show a change made just now.
        target = demo.server_with("globex", "rackconnect_automation_status", {"deployed"})
        demo.set_metadata(target["id"], {"rackconnect_automation_status": "FAILED"})
        wait_until(
            lambda: fleet_from_metrics(demo)[target["id"]]["rackconnect"] == "FAILED",
            20,
            "the exporter to report the forced FAILED",
        )
        fleet = fleet_from_metrics(demo)
        url = f"{demo.exporter}/"
        dom = chromium("--dump-dom", url, profile=tmp / "profile")
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "landing.png"
        screenshot.unlink(missing_ok=True)
        chromium(
            f"--screenshot={screenshot}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            url,
            profile=tmp / "profile",
        )
    tables = Tables()
    tables.feed(dom)
    return tables, fleet, target["id"]


def test_screenshot_is_kept(page: tuple[Tables, dict[str, dict[str, str]], str]) -> None:
    """artifacts/landing.png is a 1280x1024 PNG with real content."""
    screenshot = ARTIFACTS / "landing.png"
    assert png_size(screenshot) == WINDOW
    assert screenshot.stat().st_size > 20_000, "the screenshot looks blank"


def test_status_totals_match_the_metrics(
    page: tuple[Tables, dict[str, dict[str, str]], str],
) -> None:
    """The Total row of 'Servers by status' shows the fleet's counts per status."""
    tables, fleet, _ = page
    rows = tables.tables["status"]
    subheaders = rows[1]
    assert subheaders == [*RACKCONNECT, NO_KEY, *MANAGED, NO_KEY, *V3]
    total = next(r for r in rows if r and r[0] == "Total")
    servers, ready, *by_status = total[1:]
    assert int(servers) == len(fleet)
    assert int(ready) == sum(s["ready"] == "1" for s in fleet.values())
    rackconnect = Counter(s["rackconnect"] for s in fleet.values())
    managed = Counter(s["managed"] for s in fleet.values())
    expected = [rackconnect[k] for k in [*RACKCONNECT, NO_KEY]]
    expected += [managed[k] for k in [*MANAGED, NO_KEY]]
    v3 = Counter(s["v3"] for s in fleet.values() if "v3" in s)
    expected += [v3[k] for k in V3]
    assert [int(n) for n in by_status] == expected
    assert rackconnect["FAILED"] >= 1
    assert v3["failed"] >= 1
    assert v3["wired"] >= 1


def test_not_ready_table_lists_exactly_the_servers_not_ready(
    page: tuple[Tables, dict[str, dict[str, str]], str],
) -> None:
    """'Not ready (N)' lists every server whose ready metric is 0, with its states and age."""
    tables, fleet, forced = page
    not_ready = {i: s for i, s in fleet.items() if s["ready"] == "0"}
    assert f"Not ready ({len(not_ready)})" in tables.headings
    header, *rows = tables.tables["not-ready"]
    assert header == [
        "Account",
        "Region",
        "Name",
        "Server ID",
        "Status",
        "RackConnect",
        "Managed Operations",
        "Reason",
        "Age",
    ]
    shown = {row[3]: row for row in rows}
    assert set(shown) == set(not_ready)
    for server_id, server in not_ready.items():
        account, region, name, _, status, rackconnect, managed, _reason, age = shown[server_id]
        assert (account, region, name) == (server["account"], server["region"], server["name"])
        assert (status, rackconnect, managed) == (
            server["status"],
            server["rackconnect"],
            server["managed"],
        )
        if region == "GLOBAL":
            assert age == ""  # first-generation servers have no creation time
        else:
            assert re.fullmatch(r"(\d+[dhms])+", age), age
    assert shown[forced][5] == "FAILED"
