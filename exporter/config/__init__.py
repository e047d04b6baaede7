"""Configuration: YAML file or environment -> frozen, validated accounts.

Every problem is collected and reported at once, each naming the key (and, in a file,
the line) it is about. Secrets are never part of a message. One account's settings are
checked in ``account.py``, the same way for a file and for the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from exporter.config.account import (
    ACCOUNT_KEYS,
    DEFAULT_IDENTITY_URL,
    GENERATIONS,
    REGIONS,
    AccountConfig,
    Source,
    is_identity_v1,
    validate,
)
from exporter.errors import InvalidConfigError
from exporter.exposition.families import metadata_label_problem
from exporter.yamlcheck import YamlFileError, line_of, load_yaml, unknown_keys

__all__ = [
    "ACCOUNT_KEYS",
    "DEFAULT_IDENTITY_URL",
    "GENERATIONS",
    "REGIONS",
    "AccountConfig",
    "Config",
    "ConfigError",
    "check_reload",
    "is_identity_v1",
    "load",
    "load_environment",
    "load_file",
    "merge_metadata_labels",
    "parse_metadata_label",
]


class ConfigError(InvalidConfigError):
    """The accounts configuration is unusable; ``problems`` lists every reason."""


@dataclass(frozen=True)
class Config:
    """Every account to poll."""

    accounts: tuple[AccountConfig, ...]

    def secrets(self) -> list[str]:
        """Every secret string, so logging can make sure none is ever printed."""
        return [s for a in self.accounts for s in (a.api_key, a.password) if s]


def load(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration from ``path`` if given, else from the environment."""
    if path:
        return load_file(path)
    return load_environment(os.environ if environ is None else environ)


def load_file(path: str) -> Config:
    """Read and validate a YAML configuration file."""
    try:
        doc = load_yaml(path)
    except YamlFileError as exc:
        raise ConfigError([str(exc)]) from exc
    problems: list[str] = []
    accounts: list[AccountConfig] = []
    if not isinstance(doc, dict):
        raise ConfigError([f"{path}: the file must be a mapping with an accounts: list"])
    for key in unknown_keys(doc, ("accounts",)):
        problems.append(f"{path}:{line_of(doc, key)}: {key}: unknown key (expected: accounts)")
    raw_accounts = doc.get("accounts")
    if not isinstance(raw_accounts, list) or not raw_accounts:
        problems.append(f"{path}: accounts: must be a non-empty list of accounts")
        raw_accounts = []
    for i, raw in enumerate(raw_accounts):
        where = f"accounts[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{path}: {where}: must be a mapping")
            continue
        checked = validate(Source.in_file(raw, path, where, problems))
        if checked is not None:
            accounts.append(checked)
    _check_unique(accounts, problems, path)
    if problems:
        raise ConfigError(problems)
    return Config(tuple(accounts))


def check_reload(running: Mapping[str, AccountConfig], config: Config) -> None:
    """Refuse a reload that would send a running account's credentials elsewhere by default.

    A file cut short while being written can still be valid YAML; if it lost an account's
    identity_url, the credentials would go to the default Rackspace Identity. To move an
    account to the default, write ``identity_url`` out.
    """
    problems = [
        f"accounts: {a.name}: identity_url missing, which would move it from "
        f"{running[a.name].identity_url} to the default {DEFAULT_IDENTITY_URL}; "
        "write identity_url out to do that"
        for a in config.accounts
        if a.name in running
        and not a.identity_url_given
        and running[a.name].identity_url != a.identity_url
    ]
    if problems:
        raise ConfigError(problems)


def load_environment(environ: Mapping[str, str]) -> Config:
    """One account from ``RACKSPACE_*`` environment variables."""
    problems: list[str] = []
    source = Source.in_environment(environ, problems)
    if "username" not in source.raw:  # no account here at all: say only that
        source.say("no_username", "username")
        raise ConfigError(problems)
    checked = validate(source)
    if checked is None:
        raise ConfigError(problems)
    return Config((checked,))


def parse_metadata_label(text: str) -> tuple[str, str]:
    """``LABEL=KEY`` as (label, key); ValueError naming what is wrong."""
    label, sep, key = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected LABEL=KEY, not {text!r}")
    problem = metadata_label_problem(label)
    if problem is not None:
        raise ValueError(problem)
    return label, key.strip()


def merge_metadata_labels(config: Config, labels: tuple[tuple[str, str], ...]) -> Config:
    """Every account with ``labels`` (the flag's); an account's own pairs win per label."""
    if not labels:
        return config
    accounts = []
    for account in config.accounts:
        own = dict(account.metadata_labels)
        merged = tuple((label, own.pop(label, key)) for label, key in labels)
        accounts.append(replace(account, metadata_labels=merged + tuple(own.items())))
    return replace(config, accounts=tuple(accounts))


def _check_unique(accounts: list[AccountConfig], problems: list[str], path: str) -> None:
    seen: set[str] = set()
    for account in accounts:
        if account.name in seen:
            problems.append(f"{path}: accounts: the name {account.name!r} is used twice")
        seen.add(account.name)
