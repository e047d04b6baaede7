"""Shared fixtures: the simulated cloud on 127.0.0.1:0 and an in-process exporter."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from exporter import logs
from exporter.app import Exporter as Assembly
from exporter.app import Web
from exporter.config import AccountConfig, Config
from exporter.polling.supervisor import PollSettings, Supervisor
from exporter.simulator import Scenario, Simulator
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer
from tests.expo_helpers import samples
from tests.helpers import STOP_POLL


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
    """The exporter ``serve`` assembles, in this process; tests drive its polls by hand."""

    config: Config
    app: Assembly
    httpd: ExporterHTTPServer
    log: io.StringIO = field(default_factory=io.StringIO)

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def supervisor(self) -> Supervisor:
        return self.app.supervisor

    @property
    def url(self) -> str:
        return self.httpd.url

    def poll(self, *accounts: str) -> None:
        """One poll of every account (or those named) and region, published at its end."""
        self.app.poll_once(*accounts)

    def get(self, path: str = "/metrics", **headers: str) -> requests.Response:
        return requests.get(self.url + path, headers=headers, timeout=10)

    def scrape(
        self, openmetrics: bool = False, *, flush: bool = True
    ) -> dict[tuple[str, frozenset], float]:
        """Scrape; with ``flush``, as after the publish delay (changes waiting are published)."""
        if flush:
            self.store.flush()
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
        settings = PollSettings(interval=interval, timeout=timeout)
        app = Assembly(accounts, settings, clock=clock or time.time)
        httpd = app.listen(Web(("127.0.0.1", 0)), poll_interval=STOP_POLL)
        running = Exporter(config, app, httpd, log)
        started.append(running)
        return running

    yield make
    for running in started:
        running.app.stop(timeout=1)
