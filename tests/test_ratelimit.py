"""Rate limits (413/429 with Retry-After or a retry time in the body) and the scheduler."""

from __future__ import annotations

import time

import pytest

from exporter.config import AccountConfig
from exporter.polling.account import AccountPoller
from exporter.polling.ratelimit import TokenBucket
from exporter.rackspace.client import parse_retry_after
from exporter.simulator import Fault, Scenario, Simulator
from exporter.store import Store
from tests.conftest import account_config
from tests.expo_helpers import value
from tests.helpers import wait_until


def region_requests(sim, region: str) -> int:
    return sum(1 for e in list(sim.request_log) if e[4] == region and "/servers/detail" in e[1])


@pytest.mark.parametrize(
    ("status", "header", "body_key"),
    [
        (413, "http-date", "retryAfter"),
        (429, "seconds", "retryAt"),
        (413, "seconds", "retryAfter"),
        (429, "http-date", "retryAt"),
    ],
)
def test_rate_limit_answers_are_counted_and_not_retried(
    sim, make_exporter, status: int, header: str, body_key: str
) -> None:
    exporter = make_exporter(account_config(sim, "initech"))
    poller = exporter.supervisor.pollers[0]
    poller.authenticate()
    sim.add_fault(
        Fault(
            kind="rate_limit",
            api="servers",
            status=status,
            retry_after=30,
            retry_after_format=header,
            body_key=body_key,
        )
    )
    started = time.monotonic()
    wait = poller.poll_region("HKG")
    assert time.monotonic() - started < 5, "the poll must not sleep through the limit"
    assert wait is not None
    assert 28 <= wait <= 31
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_poll_errors_total", region="HKG", reason="rate_limited") == 1
    assert value(parsed, "rackconnect_api_requests_total", region="HKG", code=str(status)) == 1
    assert value(parsed, "rackconnect_up", region="HKG") == 0


def test_retry_time_from_the_body_alone() -> None:
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
    for key in ("retryAfter", "retryAt"):
        wait = parse_retry_after({}, {"overLimit": {"code": 413, key: soon}})
        assert wait is not None
        assert 110 < wait <= 120
    assert parse_retry_after({"Retry-After": "7"}) == 7
    assert parse_retry_after({}, {"overLimit": {"code": 413}}) is None


def test_the_simulated_account_limit_is_reported_as_rate_limited(sim, make_exporter) -> None:
    sim.rate_limit_per_minute = 4
    exporter = make_exporter(account_config(sim, "acme"))
    exporter.poll()  # three regions: three requests
    exporter.poll()  # one more fits, two are refused
    parsed = exporter.scrape()
    limited = [
        value(parsed, "rackconnect_poll_errors_total", region=r, reason="rate_limited")
        for r in ("ORD", "DFW", "IAD")
    ]
    assert sorted(limited) == [0, 1, 1]
    refused = sum(
        value(parsed, "rackconnect_api_requests_total", region=r, code="413") or 0
        for r in ("ORD", "DFW", "IAD")
    )
    assert refused == 2


@pytest.mark.slow
def test_a_rate_limited_region_waits_while_the_others_go_on(sim, make_exporter) -> None:
    sim.add_fault(
        Fault(
            kind="rate_limit",
            api="servers",
            region="DFW",
            count=1,
            retry_after=3,
            retry_after_format="seconds",
        )
    )
    exporter = make_exporter(account_config(sim, "acme"), interval=0.3)
    exporter.supervisor.start()
    wait_until(lambda: region_requests(sim, "ORD") >= 4)
    assert region_requests(sim, "DFW") == 1  # the refused one; the next waits 3 s
    wait_until(lambda: region_requests(sim, "DFW") >= 2)
    parsed = exporter.scrape()
    assert value(parsed, "rackconnect_poll_errors_total", region="DFW", reason="rate_limited") == 1


@pytest.mark.slow
def test_a_slow_region_delays_neither_the_others_nor_scrapes(sim, make_exporter) -> None:
    sim.add_fault(Fault(kind="delay", api="servers", region="IAD", seconds=3, count=1))
    exporter = make_exporter(account_config(sim, "acme"), interval=0.3, timeout=10)
    exporter.supervisor.start()
    wait_until(lambda: region_requests(sim, "ORD") >= 4)
    started = time.monotonic()
    parsed = exporter.scrape()
    assert time.monotonic() - started < 1
    assert value(parsed, "rackconnect_up", region="ORD") == 1
    assert value(parsed, "rackconnect_up", region="IAD") is None  # still in its first poll
    assert exporter.get("/-/ready").status_code == 503
    wait_until(lambda: exporter.get("/-/ready").status_code == 200)


def test_token_bucket_spreads_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(per_minute=60, burst=5, clock=lambda: now[0], sleep=sleep)
    assert [bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert bucket.acquire() == pytest.approx(1.0)
    assert bucket.acquire() == pytest.approx(1.0)
    now[0] += 60  # idle for a minute: the burst is back, never more
    assert [bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert bucket.acquire() == pytest.approx(1.0)
    # over any long stretch the rate holds: 120 requests take about two minutes
    start = now[0]
    for _ in range(120):
        bucket.acquire()
    assert now[0] - start == pytest.approx(120, abs=1)


def test_every_listing_request_takes_a_token() -> None:
    simulator = Simulator(Scenario.scale(servers=2500, regions=("ORD",)))
    simulator.start("127.0.0.1", 0)
    try:
        account = simulator.accounts[0]
        config = AccountConfig(
            name=account.name,
            username=account.username,
            api_key=account.api_key,
            identity_url=simulator.identity_url,
        )
        writer = Store(60).open_account(account.name)
        poller = AccountPoller(config, writer, 10, requests_per_minute=600)
        assert poller.bucket.burst == 120
        poller.bucket._clock = lambda: 0.0  # freeze the refill
        poller.bucket._updated = 0.0
        for region in poller.authenticate():  # the token request is not a GET
            poller.poll_region(region)  # three pages of 1000
        assert poller.bucket._tokens == 117
        poller.close()
    finally:
        simulator.stop()
