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
from exporter.polling.account import Poller
from exporter.simulator import Scenario, Simulator
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer
from tests.expo_helpers import samples


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
    poller: Poller
    httpd: ExporterHTTPServer
    log: io.StringIO = field(default_factory=io.StringIO)

    @property
    def url(self) -> str:
        return self.httpd.url

    def poll(self) -> None:
        """One poll of every account, as the loops would do it."""
        for p in self.poller.pollers:
            p.poll()

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
        store = Store([a.name for a in accounts], interval)
        poller = Poller(list(accounts), store, interval, timeout)
        httpd = ExporterHTTPServer(("127.0.0.1", 0), store)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        exporter = Exporter(config, store, poller, httpd, log)
        started.append(exporter)
        return exporter

    yield make
    for exporter in started:
        exporter.httpd.shutdown()
        exporter.httpd.server_close()
        exporter.poller.stop(timeout=1)
