"""Shared fixtures: the simulated cloud on 127.0.0.1:0 and an in-process exporter."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
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

# The slow lane: whole modules, or single tests, that take seconds each (real Prometheus,
# browsers, wheels, load and soak runs). `pytest -m "not slow"` leaves them out.
SLOW_MODULES = {
    "test_bench.py",
    "test_browser.py",
    "test_dashboards.py",
    "test_deploy.py",
    "test_load.py",
    "test_stack.py",
}
SLOW_TESTS = {
    "test_fault_matrix.py::test_running_pollers_survive_every_fault",
    "test_hostile_input.py::test_names_and_metadata_always_render_and_parse",
    "test_hostile_input.py::test_whole_listing_documents_never_crash",
    "test_hostile_input.py::test_odd_servers_through_the_api",
    "test_simulator.py::test_scale_50000_servers_in_50_pages",
    "test_serving_robust.py::test_a_scraper_is_served_within_10s_among_slow_clients",
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
    """Factory: ``make_exporter(*accounts, interval=60, timeout=5)`` -> Exporter."""
    started: list[Exporter] = []

    def make(*accounts: AccountConfig, interval: float = 60.0, timeout: float = 5.0) -> Exporter:
        config = Config(tuple(accounts))
        log = io.StringIO()
        logs.setup("debug", "logfmt", config.secrets(), stream=log)
        store = Store(interval)
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
