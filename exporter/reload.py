"""Reloading the configuration on SIGHUP: one Poller per account, restarted as needed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from exporter import logs
from exporter.config import AccountConfig, Config, ConfigError
from exporter.logs import logger
from exporter.poller import Poller
from exporter.snapshot import Store


class AccountPollers:
    """Runs each account's Poller on its own, so one account can change without the others."""

    def __init__(self, store: Store, interval: float, timeout: float) -> None:
        self.store = store
        self.interval = interval
        self.timeout = timeout
        self.running: dict[str, tuple[AccountConfig, Poller]] = {}

    def apply(self, accounts: Iterable[AccountConfig]) -> dict[str, list[str]]:
        """Start new accounts, stop removed ones, restart changed ones; say which."""
        wanted = {a.name: a for a in accounts}
        changes: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
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
            poller = Poller([account], self.store, self.interval, self.timeout)
            self.running[name] = (account, poller)
            poller.start()
        return changes

    def _stop(self, name: str) -> None:
        _account, poller = self.running.pop(name)
        poller.stop()

    def stop(self) -> None:
        """Stop every account's loop."""
        for name in list(self.running):
            self._stop(name)


def reload_config(load: Callable[[], Config], pollers: AccountPollers, store: Store) -> bool:
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
