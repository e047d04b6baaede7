"""Reloading the configuration on SIGHUP: one poller per account, restarted as needed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from exporter import logs
from exporter.config import AccountConfig, Config, ConfigError
from exporter.logs import logger
from exporter.polling.account import AccountPoller
from exporter.polling.incremental import DEFAULT_FULL_EVERY
from exporter.polling.ratelimit import DEFAULT_PER_MINUTE
from exporter.polling.scheduler import DEFAULT_WORKERS, Scheduler
from exporter.polling.sharding import select
from exporter.store import Store


@dataclass(frozen=True)
class PollSettings:
    """How often and how hard to poll: the ``--poll.*`` flags."""

    interval: float
    timeout: float
    full_every: int = DEFAULT_FULL_EVERY
    requests_per_minute: float = DEFAULT_PER_MINUTE
    workers: int = DEFAULT_WORKERS


class Supervisor:
    """Owns every account's poller, so one account can change without the others.

    Every account's regions share one scheduler and its bounded pool. With a shard
    (``(index, total)``), only the accounts that fall to this shard are polled.
    """

    def __init__(
        self, store: Store, settings: PollSettings, *, shard: tuple[int, int] = (0, 1)
    ) -> None:
        self.store = store
        self.settings = settings
        self.interval = settings.interval
        self.timeout = settings.timeout
        self.full_every = settings.full_every
        self.requests_per_minute = settings.requests_per_minute
        self.shard = shard
        self.scheduler = Scheduler([], settings.interval, settings.workers)
        self.running: dict[str, tuple[AccountConfig, AccountPoller]] = {}

    def mine(self, accounts: Iterable[AccountConfig]) -> list[AccountConfig]:
        """The accounts this shard polls."""
        index, total = self.shard
        return select(accounts, lambda a: a.name, index, total)

    def apply(self, accounts: Iterable[AccountConfig]) -> dict[str, list[str]]:
        """Start new accounts, stop removed ones, restart changed ones; say which."""
        wanted = {a.name: a for a in self.mine(accounts)}
        changes: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
        if self.scheduler._pool is None:
            self.scheduler.start()
        for name in [n for n in self.running if n not in wanted]:
            self._stop(name)
            self.store.remove_account(name)
            changes["removed"].append(name)
        for name, account in wanted.items():
            current = self.running.get(name)
            if current is not None and current[0] == account:
                continue
            if current is None:
                self.store.add_account(name)
                changes["added"].append(name)
            else:
                self._stop(name)
                # Regions no longer asked for leave; the others keep their last data.
                if account.regions is not None:
                    self.store.keep_regions(name, account.regions)
                changes["changed"].append(name)
            poller = AccountPoller(
                account,
                self.store,
                self.timeout,
                full_every=self.full_every,
                requests_per_minute=self.requests_per_minute,
            )
            self.running[name] = (account, poller)
            self.scheduler.add(poller)
        return changes

    def _stop(self, name: str) -> None:
        _account, poller = self.running.pop(name)
        self.scheduler.remove(name)
        poller.close()

    def stop(self) -> None:
        """Stop every account's polling."""
        self.scheduler.stop()
        for name in list(self.running):
            self._stop(name)


def reload_config(load: Callable[[], Config], pollers: Supervisor, store: Store) -> bool:
    """Load the configuration again and apply it; on failure keep the running one."""
    try:
        config = load()
    except ConfigError as exc:
        store.config_reloaded(False, time.time())
        logger.error(
            "config reload failed, keeping the running configuration",
            extra={"err": "; ".join(exc.problems)},
        )
        return False
    logs.add_secrets(config.secrets())
    changes = pollers.apply(config.accounts)
    store.config_reloaded(True, time.time())
    logger.info(
        "config reloaded",
        extra={k: ",".join(v) for k, v in changes.items()} | {"accounts": len(config.accounts)},
    )
    return True
