"""Hostile and odd upstream input: property tests over names, metadata and whole documents.

Whatever Rackspace sends, the exposition parses back with prometheus_client (text and
OpenMetrics), a handful of examples pass ``promtool check metrics``, and nothing crashes.
Oversized answers and listings are refused with a clear reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.app import Exporter, Web
from exporter.errors import BAD_RESPONSE, UpstreamError
from exporter.exposition.gzipparts import Body
from exporter.exposition.render import RegionRenderer
from exporter.exposition.sections import render_parts
from exporter.model import MAX_REASON_LENGTH, AccountView, RegionView, Server
from exporter.polling.supervisor import PollSettings
from exporter.rackspace import client as upstream
from exporter.rackspace import cloudservers as servers_module
from exporter.rackspace.cloudservers import Listing, add_page_bytes, next_link, split_listing
from exporter.rackspace.identity import parse_access
from exporter.simulator import Scenario, Simulator
from exporter.web.server import ExporterHTTPServer
from tests.conftest import account_config
from tests.expo_helpers import promtool_check, samples, series, value

NASTY = [
    'quote " inside',
    "back\\slash\\",
    "new\nline",
    "carriage\rreturn",
    "tab\tand\x00nul\x1b[31m",
    "\u2028line separator\u2029",
    "\ufeffbom",
    "emoji 🦄 and ünïcödé",
    "\\n literal",
    "x" * 10_000,
    "",
    " ",
    "}",
    'a="b",c="d"',
    "# HELP not a comment",
]
KEYS = [
    "rackconnect_automation_status",
    "rax_service_level_automation",
    "rackconnect_unprocessable_reason",
    "rackconnect_automation_feature_configure_network_stack",
    "rackconnect_automation_feature_manage_software_firewall",
    "rackconnect_automation_feature_provison_public_ip",
    "rackconnect_automation_feature_provision_public_ip",
]
# Any unicode text, including control characters and lone surrogates (from JSON escapes).
text = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=60),
    st.text(max_size=10_000).filter(lambda t: len(t) > 300),
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)
metadata = st.dictionaries(st.one_of(st.sampled_from(KEYS), text), json_value, max_size=8)
server_doc = st.fixed_dictionaries(
    {"id": st.one_of(text, st.integers(), json_value)},
    optional={
        "name": st.one_of(text, json_value),
        "metadata": st.one_of(metadata, json_value),
        "created": st.one_of(text, json_value, st.just("2013-07-23T15:44:56Z")),
        "updated": st.one_of(text, json_value, st.just("2024-02-03T04:05:06Z")),
        "status": st.one_of(st.sampled_from(["ACTIVE", "DELETED", "deleted"]), json_value),
    },
)


def exposition(servers: list[Server], openmetrics: bool = False) -> bytes:
    """The whole exposition for one account and region holding ``servers``."""
    fragments = RegionRenderer("acct", "ORD").render(servers, True, True)
    region = RegionView("ORD", True, 1.0, 0.5, parts=fragments)
    parts = render_parts(
        [AccountView("acct", regions=(region,))],
        errors={},
        requests={},
        interval=60,
        openmetrics=openmetrics,
    )
    return Body(parts).joined(compressed=False)


def as_exported(value: str) -> str:
    """A string as it comes back from the exposition (lone surrogates become '?')."""
    return value.encode("utf-8", "replace").decode("utf-8")


def check_round_trip(records: list[Server]) -> None:
    unique = list({s.id: s for s in records}.values())
    for openmetrics in (False, True):
        parsed = samples(exposition(unique, openmetrics), openmetrics)
        infos = series(parsed, "rackconnect_server_info")
        assert len(infos) == len(unique)
        for server in unique:
            (info,) = series(parsed, "rackconnect_server_info", server_id=as_exported(server.id))
            assert info["name"] == as_exported(server.name)
            reason = server.unprocessable_reason
            if reason is not None:
                (lbl,) = series(
                    parsed, "rackconnect_automation_unprocessable_info", **info_ids(info)
                )
                assert lbl["reason"] == as_exported(reason)
                assert len(reason) <= MAX_REASON_LENGTH
            statuses = [
                value(parsed, "rackconnect_automation_status", status=s, **info_ids(info))
                for s in ("DEPLOYING", "DEPLOYED", "FAILED", "UNPROCESSABLE", "UNKNOWN")
            ]
            assert statuses == [None] * 5 or sum(statuses) == 1


def info_ids(info: dict[str, str]) -> dict[str, str]:
    return {k: info[k] for k in ("account", "region", "server_id")}


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(name=text, meta=metadata, server_id=text.filter(bool))
def test_names_and_metadata_always_render_and_parse(name, meta, server_id) -> None:
    server = Server.from_api({"id": server_id, "name": name, "metadata": meta})
    check_round_trip([server])


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    doc=st.one_of(json_value, st.fixed_dictionaries({"servers": st.lists(server_doc, max_size=6)}))
)
def test_whole_listing_documents_never_crash(doc) -> None:
    next_link(doc)
    listing = Listing()
    _, error = outcome(split_listing, doc, "https://ord.example/v2/1/servers/detail", listing)
    if error is not None:
        assert error.reason == BAD_RESPONSE
    else:
        check_round_trip(listing.servers)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    doc=st.one_of(
        json_value,
        st.fixed_dictionaries(
            {"servers": st.lists(server_doc, max_size=6)},
            optional={"servers_links": json_value},
        ),
    ),
    labels=st.sampled_from([(), (("env", "environment"),), (("why", KEYS[2]),)]),
)
def test_page_bytes_give_what_the_decoded_document_gives(doc, labels) -> None:
    """The typed decoder of listing pages agrees with reading the generic document."""
    url = "https://ord.example/v2/1/servers/detail"
    data = json.dumps(doc).encode()
    generic, typed = Listing(), Listing()
    _, expected = outcome(split_listing, json.loads(data), url, generic, "next", labels)
    link, error = outcome(add_page_bytes, data, url, typed, "next", labels)
    assert (error is None) == (expected is None)
    if error is None:
        assert (typed.servers, typed.deleted) == (generic.servers, generic.deleted)
        assert link == next_link(json.loads(data))
    else:
        assert (error.reason, str(error)) == (expected.reason, str(expected))


def outcome(function, *args: object) -> tuple:
    """(result, None), or (None, the UpstreamError raised): anything else fails the test."""
    try:
        return function(*args), None
    except UpstreamError as exc:
        return None, exc


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    doc=st.one_of(
        json_value,
        st.fixed_dictionaries(
            {
                "access": st.fixed_dictionaries(
                    {},
                    optional={
                        "token": st.one_of(
                            json_value,
                            st.fixed_dictionaries(
                                {"id": st.one_of(text, json_value)},
                                optional={"expires": st.one_of(text, json_value)},
                            ),
                        ),
                        "serviceCatalog": json_value,
                        "user": json_value,
                    },
                )
            }
        ),
    )
)
def test_identity_documents_never_crash(doc) -> None:
    access, error = outcome(parse_access, doc)
    if error is not None:
        assert error.reason == BAD_RESPONSE
        return
    assert isinstance(access.token, str)
    assert access.token
    assert all(isinstance(u, str) for urls in access.endpoints.values() for u in urls.values())


@settings(max_examples=5, deadline=None)
@given(names=st.lists(text, min_size=1, max_size=4), meta=metadata)
def test_promtool_accepts_generated_expositions(names, meta) -> None:
    records = [
        Server.from_api({"id": f"id-{i}", "name": n, "metadata": meta}) for i, n in enumerate(names)
    ]
    promtool_check(exposition(records))


def test_promtool_accepts_every_nasty_name() -> None:
    records = [
        Server.from_api(
            {
                "id": f"id-{i}",
                "name": n,
                "metadata": {
                    "rackconnect_automation_status": n,
                    "rackconnect_unprocessable_reason": n,
                    "rax_service_level_automation": n,
                },
            }
        )
        for i, n in enumerate(NASTY)
    ]
    promtool_check(exposition(records))
    check_round_trip(records)


# --- through the simulated cloud, over HTTP ------------------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Simulator, Exporter, ExporterHTTPServer]]:
    sim = Simulator(Scenario.demo(seed=1), step_interval=None)
    sim.start()
    account = account_config(sim, "initech")
    exporter = Exporter([account], PollSettings(interval=60, timeout=5))
    yield sim, exporter, exporter.listen(Web(("127.0.0.1", 0)))
    exporter.stop(1)
    sim.stop()


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=text, meta=st.dictionaries(st.sampled_from(KEYS), text, max_size=7))
def test_odd_servers_through_the_api(live, name, meta) -> None:
    sim, exporter, httpd = live
    server_id = sim.add_server("initech", "HKG", name=name, metadata=meta)
    try:
        exporter.poll_once()
        for openmetrics in (False, True):
            accept = "application/openmetrics-text" if openmetrics else "text/plain"
            response = requests.get(httpd.url + "/metrics", headers={"Accept": accept}, timeout=5)
            parsed = samples(response.content, openmetrics)
            assert value(parsed, "rackconnect_up", region="HKG") == 1
            (info,) = series(parsed, "rackconnect_server_info", server_id=server_id)
            assert info["name"] == as_exported(name)
        assert requests.get(httpd.url + "/", timeout=5).status_code == 200
    finally:
        sim.delete_server(server_id)


# --- ceilings ---------------------------------------------------------------------------------


def test_an_oversized_response_is_refused(sim, make_exporter, monkeypatch) -> None:
    monkeypatch.setattr(upstream, "MAX_RESPONSE_BYTES", 200_000)
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.poll()
    sim.add_server("initech", "HKG", name="x" * 300_000)
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", region="HKG") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="HKG", reason="bad_response") == 1
    assert series(parsed, "rackconnect_server_info", region="HKG")  # the last good ones
    assert "response larger than 200000 bytes" in exporter.log.getvalue()


def test_too_many_servers_are_refused(sim, make_exporter, monkeypatch) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    exporter.poll()
    count = len(series(exporter.scrape(), "rackconnect_server_info", region="HKG"))
    monkeypatch.setattr(servers_module, "MAX_SERVERS", count - 1)
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", region="HKG") == 0
    assert value(parsed, "rackconnect_poll_errors_total", region="HKG", reason="bad_response") == 1
    assert len(series(parsed, "rackconnect_server_info", region="HKG")) == count
    assert f"more than {count - 1} servers" in exporter.log.getvalue()


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (
            "https://dfw.example/v2/1/servers/detail?limit=1000&marker=a",
            "https://dfw.example/v2/1/servers/detail?limit=1000&marker=a",
        ),
        (
            "http://dfw.example/v2/1/servers/detail?marker=a",
            "https://dfw.example/v2/1/servers/detail?marker=a",
        ),
        (
            "https://evil.example:8443/v2/1/servers/detail?marker=a#x",
            "https://dfw.example/v2/1/servers/detail?marker=a",
        ),
        ("/v2/1/servers/detail?marker=a", "https://dfw.example/v2/1/servers/detail?marker=a"),
    ],
)
def test_next_links_stay_on_the_catalog_endpoint(href: str, expected: str) -> None:
    assert servers_module.same_origin(href, "https://dfw.example/v2/1") == expected
