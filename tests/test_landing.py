"""The landing page: a region that is down shows stale data; every link is relative."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import urljoin

from exporter import __version__
from exporter.simulator import Fault
from exporter.web import landing
from exporter.web.landing import render_landing
from tests.conftest import account_config


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in {"href", "src"} and v is not None]


def status_row(html: str, account: str, region: str) -> str:
    """The row of the 'Servers by status' table for one account and region."""
    table = html.split("<table id='status'>")[1].split("</table>", maxsplit=1)[0]
    (row,) = [r for r in table.split("<tr") if f"<td>{account}</td><td>{region}" in r]
    return row


def test_a_region_that_is_down_shows_its_data_as_stale(sim, make_exporter) -> None:
    """Counts stay, greyed, with the age of the last successful poll; others are untouched."""
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    before = status_row(exporter.get("/").text, "acme", "DFW")
    sim.add_fault(Fault(kind="status", api="servers", region="DFW", status=404))
    exporter.poll()
    html = exporter.get("/").text
    row = status_row(html, "acme", "DFW")
    assert row.startswith(" class='stale' title='last successful poll 20")
    assert re.search(r"<td>DFW <small>\(stale, \d+s old\)</small></td>", row)
    counts = re.findall(r"<td class='n[^']*'>(\d+)</td>", row)
    assert counts == re.findall(r"<td class='n[^']*'>(\d+)</td>", before)
    assert int(counts[0]) > 0
    assert "Grey rows: the region's last poll failed" in html
    assert "stale" not in status_row(html, "acme", "ORD")
    accounts = html.split("<table id='accounts'>")[1].split("</table>", maxsplit=1)[0]
    assert re.search(r"<tr class='stale'[^>]*><td>acme</td><td>[^<]*</td><td>DFW</td>", accounts)


def test_a_region_that_never_succeeded_says_it_has_no_data(sim, make_exporter) -> None:
    sim.add_fault(Fault(kind="status", api="servers", region="DFW", status=404))
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    row = status_row(exporter.get("/").text, "acme", "DFW")
    assert "title='never polled successfully'" in row
    assert "<small>(no data)</small>" in row


def test_every_link_is_relative(sim, make_exporter) -> None:
    """Behind a proxy serving the exporter at /rackconnect/, every link stays under it."""
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()
    links = Links()
    links.feed(exporter.get("/").text)
    assert links.urls
    base = "https://proxy.example/rackconnect/"
    for url in links.urls:
        assert not url.startswith("/"), url
        assert "://" not in url, url
        assert urljoin(base, url).startswith(base), url
        assert exporter.get("/" + url.removeprefix("./")).status_code == 200, url
    assert "./metrics" in links.urls


def test_a_custom_telemetry_path_is_linked_relatively() -> None:
    snapshot = SimpleNamespace(accounts=())
    html = render_landing(snapshot, "/prometheus/metrics").decode()  # type: ignore[arg-type]
    assert "href='./prometheus/metrics'" in html


def test_the_page_names_the_version_and_the_source_revision(monkeypatch) -> None:
    monkeypatch.setattr(landing, "revision", lambda: "0123abcd")
    snapshot = SimpleNamespace(accounts=())
    html = render_landing(snapshot, "/metrics").decode()  # type: ignore[arg-type]
    assert f"Version {__version__}, revision 0123abcd." in html
