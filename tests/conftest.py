"""Shared fixtures: the simulated cloud on 127.0.0.1:0 and an in-process exporter."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from exporter import logs
from exporter.config import AccountConfig, Config
from exporter.polling.supervisor import PollSettings, Supervisor
from exporter.simulator import Scenario, Simulator
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer
from tests.expo_helpers import samples

# The slow lane: a test belongs here when it starts a process (the exporter, promtool,
# Prometheus, a browser, pip) or takes more than about a second. `pytest -m "not slow"`
# leaves these out; CI runs everything.
SLOW_MODULES = {
    "test_bench.py",
    "test_browser.py",
    "test_cli.py",
    "test_dashboards.py",
    "test_deploy.py",
    "test_fault_matrix.py",
    "test_healthcheck.py",
    "test_lifecycle.py",
    "test_load.py",
    "test_rules.py",
    "test_sharding.py",
    "test_stack.py",
}
SLOW_TESTS = {
    "test_agent.py::test_agent_command",
    "test_agent.py::test_never_more_than_30_requests_a_minute",
    "test_agent_local.py::test_agent_without_sighup_serves_metrics",
    "test_agent_local.py::test_wait_local_exit_codes_from_the_command_line",
    "test_history.py::test_a_server_seen_finishing_is_observed_once_from_its_created_time",
    "test_hostile_input.py::test_identity_documents_never_crash",
    "test_hostile_input.py::test_names_and_metadata_always_render_and_parse",
    "test_hostile_input.py::test_odd_servers_through_the_api",
    "test_hostile_input.py::test_page_bytes_give_what_the_decoded_document_gives",
    "test_hostile_input.py::test_whole_listing_documents_never_crash",
    "test_metadata_labels.py::test_a_bad_flag_exits_3_naming_it",
    "test_metadata_labels.py::test_serve_puts_the_owner_on_server_info",
    "test_poller.py::test_a_scrape_during_a_poll_sees_the_previous_complete_state",
    "test_poller.py::test_auth_failure_after_success_keeps_regions",
    "test_poller.py::test_failure_reasons",
    "test_poller.py::test_one_region_failing_keeps_its_data_and_spares_the_others",
    "test_poller.py::test_paging_over_three_pages",
    "test_ratelimit.py::test_a_rate_limited_region_waits_while_the_others_go_on",
    "test_ratelimit.py::test_a_slow_region_delays_neither_the_others_nor_scrapes",
    "test_secrets.py::test_credentials_and_tokens_appear_nowhere",
    "test_serving_robust.py::test_a_scraper_is_served_within_10s_among_slow_clients",
    "test_serving_robust.py::test_a_slow_reader_is_cut_off_at_the_write_deadline",
    "test_serving_robust.py::test_sigterm_during_a_trickling_poll_exits_within_5_seconds",
    "test_simulator.py::test_scale_50000_servers_in_50_pages",
    "test_simulator.py::test_tenant_scoping_in_either_place",
    "test_status.py::test_status_from_the_command_line",
    "test_status.py::test_unreachable_cloud_exits_1",
    "test_supervisor.py::test_a_rate_limited_region_waits_as_told_and_the_others_do_not",
    "test_upstream_faults.py::test_a_trickling_body_fails_the_poll_with_timeout",
    "test_upstream_faults.py::test_large_bodies_wait_for_the_decode_budget",
    "test_wait.py::test_exit_codes_from_the_command_line",
    "test_wait.py::test_waits_through_deploying_deployed_and_managed_complete",
    "test_wait_pipeline.py::test_status_exits_1_when_the_region_asked_for_fails",
    "test_webconfig.py::test_a_slow_tls_handshake_is_cut_off",
    "test_webconfig.py::test_basic_auth_guards_every_path",
    "test_webconfig.py::test_every_serving_command_takes_the_flag",
    "test_webconfig.py::test_unknown_key_exits_3_naming_it",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow lane."""
    for item in items:
        module = item.path.name
        if module in SLOW_MODULES or f"{module}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """The demo fleet, frozen (it changes only when a test says so)."""
    simulator = Simulator(Scenario.demo(seed=1), step_interval=None)
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def account_config(sim: Simulator, name: str, **overrides: object) -> AccountConfig:
    """An AccountConfig for one of the simulator's accounts (API key credentials)."""
    account = next(a for a in sim.accounts if a.name == name)
    values: dict[str, object] = {
        "name": account.name,
        "username": account.username,
        "api_key": account.api_key,
        "identity_url": sim.identity_url,
    }
    values.update(overrides)
    return AccountConfig(**values)  # type: ignore[arg-type]


@dataclass
class Exporter:
    """An exporter running in this process; tests drive its polls by hand."""

    config: Config
    store: Store
    supervisor: Supervisor
    httpd: ExporterHTTPServer
    log: io.StringIO = field(default_factory=io.StringIO)

    @property
    def url(self) -> str:
        return self.httpd.url

    def poll(self) -> None:
        """One poll of every account and region, through the supervisor."""
        self.supervisor.poll_now()

    def get(self, path: str = "/metrics", **headers: str) -> requests.Response:
        return requests.get(self.url + path, headers=headers, timeout=10)

    def scrape(self, openmetrics: bool = False) -> dict[tuple[str, frozenset], float]:
        accept = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain"
        response = self.get("/metrics", Accept=accept)
        assert response.status_code == 200
        return samples(response.content, openmetrics)


@pytest.fixture
def make_exporter() -> Iterator:
    """Factory: ``make_exporter(*accounts, interval=60, timeout=5, clock=None)`` -> Exporter.

    ``clock`` replaces the store's wall clock (the time of each poll).
    """
    started: list[Exporter] = []

    def make(
        *accounts: AccountConfig,
        interval: float = 60.0,
        timeout: float = 5.0,
        clock: Callable[[], float] | None = None,
    ) -> Exporter:
        config = Config(tuple(accounts))
        log = io.StringIO()
        logs.setup("debug", "logfmt", config.secrets(), stream=log)
        store = Store(interval) if clock is None else Store(interval, clock=clock)
        supervisor = Supervisor(store, PollSettings(interval=interval, timeout=timeout))
        supervisor.apply(accounts)
        httpd = ExporterHTTPServer(("127.0.0.1", 0), store)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        exporter = Exporter(config, store, supervisor, httpd, log)
        started.append(exporter)
        return exporter

    yield make
    for exporter in started:
        exporter.httpd.shutdown()
        exporter.httpd.server_close()
        exporter.supervisor.stop(timeout=1)
