"""Every upstream fault, one at a time, against a running exporter.

For each fault: ``/metrics`` keeps answering; the affected region reports ``up 0`` with
the right reason counted, keeps its last good per-server series and recovers on the first
poll after the fault clears; other regions and accounts are untouched; the log has one
line per failure and no traceback; no secret or token reaches a log line or an answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from exporter import logs
from exporter.errors import REASONS
from exporter.exposition.families import PER_SERVER_FAMILIES
from exporter.simulator import Fault, Simulator
from exporter.simulator.web import Handler, SimHTTPServer
from tests.conftest import Exporter, account_config
from tests.expo_helpers import value
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.slow

ACCOUNT = "acme"  # regions ORD, DFW, IAD
REGION = "DFW"  # the region the per-region faults hit
RELAYED = "IAD"  # the region refused connections hit (acme's alone, so one catalog entry)
OTHER = "globex"  # another account (DFW, SYD) that must stay untouched
TIMEOUT = 1.0  # --poll.timeout of the exporter under test
PER_SERVER = {f.name for f in PER_SERVER_FAMILIES}
Parsed = dict[tuple[str, frozenset], float]


class Relay:
    """A second listener of the simulator on a fixed port: closed, it refuses connections."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.port = free_port()
        self._httpd: _TrackingServer | None = None
        self.open()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        httpd = _TrackingServer(("127.0.0.1", self.port), Handler)
        httpd.sim = self.sim
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        self._httpd = httpd

    def close(self) -> None:
        """Stop listening and cut the connections already open, as a dead host would."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        for sock in list(httpd.connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _TrackingServer(SimHTTPServer):
    """SimHTTPServer that remembers its open connections so they can be cut."""

    def __init__(self, *args: object) -> None:
        self.connections: set[socket.socket] = set()
        super().__init__(*args)  # type: ignore[arg-type]

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[override]
        self.connections.discard(request)
        super().shutdown_request(request)


@dataclass
class Ctx:
    """What a fault case may need to start or clear its fault."""

    sim: Simulator
    relay: Relay
    fault_ids: list[str] = field(default_factory=list)

    def add(self, fault: Fault) -> None:
        self.fault_ids.append(self.sim.add_fault(fault))

    def clear(self) -> None:
        self.sim.clear_faults()
        self.fault_ids.clear()


@dataclass(frozen=True)
class Case:
    """One fault: how to start it, the reason it must be counted under, how to end it."""

    name: str
    start: Callable[[Ctx], None]
    reason: str
    regions: tuple[str, ...] = (REGION,)
    clear: Callable[[Ctx], None] = Ctx.clear
    # Route the region (or Identity) through the relay from the start.
    via_relay: str | None = None
    # List in full on every poll: a fault in paging needs pages, and a delta of an
    # unchanged fleet is one empty page.
    full_listings: bool = False


def servers(kind: str, **kw: object) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.add(
        Fault(kind=kind, api="servers", account=ACCOUNT, region=REGION, **kw)
    )


def identity(kind: str, **kw: object) -> Callable[[Ctx], None]:
    def start(ctx: Ctx) -> None:
        ctx.add(Fault(kind=kind, api="identity", account=ACCOUNT, **kw))
        ctx.sim.revoke_tokens(ACCOUNT)  # the exporter must go back to Identity

    return start


ALL_REGIONS = ("DFW", "IAD", "ORD")

CASES = [
    # a burst as long as the retries within one poll; it ends by itself
    Case("500 burst", servers("status", status=500, count=3), "http_error", clear=lambda c: None),
    Case("503 burst", servers("status", status=503, count=3), "http_error", clear=lambda c: None),
    Case("slower than poll.timeout", servers("delay", seconds=TIMEOUT + 0.5), "timeout"),
    Case("connection reset", servers("reset"), "connection"),
    Case(
        "connection refused",
        lambda ctx: ctx.relay.close(),
        "connection",
        (RELAYED,),
        clear=lambda ctx: ctx.relay.open(),
        via_relay="region",
    ),
    Case(
        "413 Retry-After http-date",
        servers("rate_limit", status=413, retry_after=1, retry_after_format="http-date"),
        "rate_limited",
    ),
    Case(
        "413 Retry-After seconds",
        servers("rate_limit", status=413, retry_after=1, retry_after_format="seconds"),
        "rate_limited",
    ),
    Case("401 after revocation, token refused again", servers("unauthorized"), "auth"),
    Case("malformed JSON", servers("malformed_json"), "bad_response"),
    Case("truncated body", servers("truncated"), "connection"),
    Case("missing servers key", servers("missing_key"), "bad_response"),
    Case("servers is an object", servers("wrong_types", variant="servers_object"), "bad_response"),
    Case("next link loops", servers("loop_next"), "bad_response", full_listings=True),
    Case("identity 503", identity("status", status=503), "http_error", ALL_REGIONS),
    Case("identity 500", identity("status", status=500), "http_error", ALL_REGIONS),
    Case(
        "identity refused",
        lambda ctx: (ctx.relay.close(), ctx.sim.revoke_tokens(ACCOUNT)),
        "connection",
        ALL_REGIONS,
        clear=lambda ctx: ctx.relay.open(),
        via_relay="identity",
    ),
    Case(
        "identity rate limited",
        identity("rate_limit", status=413, retry_after=1, retry_after_format="seconds"),
        "rate_limited",
        ALL_REGIONS,
    ),
    Case("identity rejects the key", identity("unauthorized"), "auth", ALL_REGIONS),
    Case(
        "identity catalog wrong type",
        identity("wrong_types", variant="catalog_object"),
        "bad_response",
        ALL_REGIONS,
    ),
    Case("identity malformed JSON", identity("malformed_json"), "bad_response", ALL_REGIONS),
]


THREADED_SKIPS = {
    "503 burst",
    "413 Retry-After http-date",
    "identity 500",
    "identity refused",
    "identity rate limited",
    "identity malformed JSON",
}


@pytest.fixture
def relay(sim: Simulator) -> Iterator[Relay]:
    r = Relay(sim)
    yield r
    r.close()


def build(sim: Simulator, relay: Relay, make_exporter, case: Case, **kw: float) -> Exporter:
    """An exporter for ACCOUNT and OTHER, logging at info with no secret masking at all."""
    acme = account_config(sim, ACCOUNT)
    if case.via_relay == "region":
        sim.override_endpoint(RELAYED, relay.url)
    elif case.via_relay == "identity":
        acme = account_config(sim, ACCOUNT, identity_url=relay.url + "/v2.0/")
    exporter = make_exporter(acme, account_config(sim, OTHER), timeout=TIMEOUT, **kw)
    # Without masking, a leaked secret would show as itself.
    logs.setup("info", "logfmt", (), stream=exporter.log)
    return exporter


def per_server(parsed: Parsed, account: str, region: str) -> Parsed:
    return {
        (n, lbl): v
        for (n, lbl), v in parsed.items()
        if n in PER_SERVER and ("account", account) in lbl and ("region", region) in lbl
    }


def errors(parsed: Parsed, account: str, region: str) -> dict[str, float | None]:
    return {
        r: value(parsed, "rackconnect_poll_errors_total", account=account, region=region, reason=r)
        for r in REASONS
    }


def secrets_of(sim: Simulator) -> list[str]:
    plain = [s for a in sim.accounts for s in (a.api_key, a.password)]
    return plain + sim.issued_tokens()


def assert_nothing_leaks(sim: Simulator, exporter: Exporter, answers: list[str]) -> None:
    leaks = secrets_of(sim)
    assert len(leaks) > 6  # api keys, passwords and at least one token
    texts = [exporter.log.getvalue(), *answers]
    for path in ("/metrics", "/", "/-/ready", "/-/healthy"):
        texts.append(exporter.get(path).text)
    texts.append(exporter.get("/metrics", Accept="application/openmetrics-text").text)
    for text in texts:
        for secret in leaks:
            assert secret not in text


def assert_case(sim: Simulator, exporter: Exporter, case: Case, before: Parsed) -> Parsed:
    """Check the state after one poll with the fault active; return that scrape."""
    parsed = exporter.scrape()
    for region in ALL_REGIONS:
        expected_errors = dict.fromkeys(REASONS, 0.0)
        if region in case.regions:
            expected_errors[case.reason] = 1.0
        assert errors(parsed, ACCOUNT, region) == expected_errors, region
        up = value(parsed, "rackconnect_up", account=ACCOUNT, region=region)
        assert up == (0 if region in case.regions else 1), region
        # the failed region keeps its last good series; the others are unchanged anyway
        assert per_server(parsed, ACCOUNT, region) == per_server(before, ACCOUNT, region)
        assert per_server(parsed, ACCOUNT, region), region
        if region in case.regions:
            last = "rackconnect_last_successful_poll_timestamp_seconds"
            assert value(parsed, last, account=ACCOUNT, region=region) == value(
                before, last, account=ACCOUNT, region=region
            )
    for region in ("DFW", "SYD"):
        assert value(parsed, "rackconnect_up", account=OTHER, region=region) == 1
        assert set(errors(parsed, OTHER, region).values()) == {0}
        assert per_server(parsed, OTHER, region) == per_server(before, OTHER, region)
    assert value(parsed, "rackconnect_up", account=ACCOUNT, region="") is None
    return parsed


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fault(sim, relay, make_exporter, case: Case, capfd) -> None:
    exporter = build(sim, relay, make_exporter, case)
    if case.full_listings:
        for poller in exporter.supervisor.pollers:
            poller.full_every = 1
    exporter.poll()
    before = exporter.scrape()
    assert {value(before, "rackconnect_up", region=r, account=ACCOUNT) for r in ALL_REGIONS} == {1}
    exporter.log.truncate(0)
    exporter.log.seek(0)

    ctx = Ctx(sim, relay)
    case.start(ctx)
    answers: list[str] = []
    poll = threading.Thread(target=exporter.poll)
    poll.start()
    while poll.is_alive():  # scrapes are answered while the poll struggles
        response = exporter.get("/metrics")
        assert response.status_code == 200
        answers.append(response.text)
        time.sleep(0.05)
    poll.join()
    assert_case(sim, exporter, case, before)

    log = exporter.log.getvalue()
    lines = log.splitlines()
    assert all(line.startswith("ts=") for line in lines), log  # one line per record
    failed = [line for line in lines if 'msg="poll failed"' in line]
    assert len(failed) == len(case.regions), log
    for region in case.regions:
        assert sum(f"region={region} reason={case.reason}" in line for line in failed) == 1
    assert "Traceback" not in log
    assert "level=error" not in log

    case.clear(ctx)
    exporter.poll()
    after = exporter.scrape()
    for region in ALL_REGIONS:
        assert value(after, "rackconnect_up", account=ACCOUNT, region=region) == 1
        assert per_server(after, ACCOUNT, region) == per_server(before, ACCOUNT, region)
    assert_nothing_leaks(sim, exporter, answers)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    for secret in secrets_of(sim):
        assert secret not in out + err


def test_a_revoked_token_is_replaced_within_the_poll(sim, relay, make_exporter) -> None:
    """A 401 on a token that was valid is not a failure: one new token, the poll goes on."""
    exporter = build(sim, relay, make_exporter, CASES[0])
    exporter.poll()
    sim.revoke_tokens(ACCOUNT)
    exporter.poll()
    parsed = exporter.scrape()
    for region in ALL_REGIONS:
        assert value(parsed, "rackconnect_up", account=ACCOUNT, region=region) == 1
        assert set(errors(parsed, ACCOUNT, region).values()) == {0}
    unauthorized = [
        v
        for (n, lbl), v in parsed.items()
        if n.endswith("requests_total") and ("code", "401") in lbl
    ]
    # A region whose request left after another region renewed the token sees no 401;
    # which regions do is a matter of timing. None sees two: one renewal serves them all.
    assert 1 <= len(unauthorized) <= 3
    assert set(unauthorized) == {1}
    assert (
        value(parsed, "rackconnect_api_requests_total", account=ACCOUNT, api="identity", code="200")
        == 2
    )
    assert 'msg="poll failed"' not in exporter.log.getvalue()
    assert_nothing_leaks(sim, exporter, [])


@pytest.mark.parametrize("variant", ["metadata_list", "id_int", "name_null", "created_garbage"])
def test_tolerated_wrong_types(sim, relay, make_exporter, variant: str) -> None:
    """Odd field types in one server are read as absent, not as a failed poll."""
    exporter = build(sim, relay, make_exporter, CASES[0])
    sim.add_fault(
        Fault(kind="wrong_types", api="servers", account=ACCOUNT, region=REGION, variant=variant)
    )
    exporter.poll()
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account=ACCOUNT, region=REGION) == 1
    assert per_server(parsed, ACCOUNT, REGION)


def test_running_pollers_survive_every_fault(sim, relay, make_exporter) -> None:
    """The real polling threads, a short interval, every fault in turn, scrapes throughout."""
    exporter = build(sim, relay, make_exporter, CASES[0], interval=0.2)
    # route IAD through the relay so that refusing connections is one of the faults
    sim.override_endpoint(RELAYED, relay.url)
    exporter.supervisor.start()
    stop = threading.Event()
    scrape_failures: list[str] = []
    scrapes = [0]

    def scraper() -> None:
        while not stop.is_set():
            try:
                response = exporter.get("/metrics")
                if response.status_code != 200:
                    scrape_failures.append(str(response.status_code))
            except requests.RequestException as exc:
                scrape_failures.append(repr(exc))
            scrapes[0] += 1
            time.sleep(0.02)

    watcher = threading.Thread(target=scraper)
    watcher.start()
    try:
        wait_until(lambda: all_up(exporter.scrape(flush=False), ACCOUNT, ALL_REGIONS), 30)
        ctx = Ctx(sim, relay)
        # One fault of each kind (the parametrized test has every variant); Identity through
        # the relay needs an exporter of its own.
        cases = [c for c in CASES if c.name not in THREADED_SKIPS]
        for case in cases:
            counted = errors(exporter.scrape(), ACCOUNT, case.regions[0])[case.reason] or 0
            case.start(ctx)
            wait_until(
                lambda case=case, counted=counted: (
                    (
                        errors(exporter.scrape(flush=False), ACCOUNT, case.regions[0])[case.reason]
                        or 0
                    )
                    > counted
                ),
                30,
                case.name,
            )
            parsed = exporter.scrape()
            assert value(parsed, "rackconnect_up", account=OTHER, region="SYD") == 1
            case.clear(ctx)
            wait_until(
                lambda: all_up(exporter.scrape(flush=False), ACCOUNT, ALL_REGIONS), 30, case.name
            )
            alive = {t.name for t in threading.enumerate()}
            assert "scheduler" in alive, case.name  # every account's polls are scheduled
    finally:
        stop.set()
        watcher.join()
    assert scrape_failures == []
    assert scrapes[0] > 50
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_up", account=OTHER, region="SYD") == 1
    assert "Traceback" not in exporter.log.getvalue()
    assert_nothing_leaks(sim, exporter, [])


def all_up(parsed: Parsed, account: str, regions: tuple[str, ...]) -> bool:
    return all(value(parsed, "rackconnect_up", account=account, region=r) == 1 for r in regions)
