"""Configuration: YAML file or environment -> frozen, validated accounts.

Every problem is collected and reported at once, each naming the key (and, in a file,
the line) it is about. Secrets are never part of a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from exporter.errors import InvalidConfigError
from exporter.exposition.families import metadata_label_problem
from exporter.yamlcheck import YamlFileError, first_line, line_of, load_yaml, unknown_keys

DEFAULT_IDENTITY_URL = "https://identity.api.rackspacecloud.com/v2.0/"
REGIONS = ("ORD", "DFW", "IAD", "LON", "SYD", "HKG")
GENERATIONS = ("next", "first")
ACCOUNT_KEYS = (
    "name",
    "username",
    "api_key",
    "api_key_file",
    "password",
    "password_file",
    "identity_url",
    "regions",
    "generations",
    "rackconnect",
    "managed",
    "metadata_labels",
    "rackconnect_v3",
)


V1_NEXT_GEN = "Identity v1.0 reaches first-generation servers only: use generations: [first]"
V1_PASSWORD = "Identity v1.0 takes an API key, not a password"


def is_identity_v1(url: str) -> bool:
    """True when ``url`` is an Identity v1.0 endpoint (``.../v1.0``)."""
    return url.rstrip("/").endswith("/v1.0")


class ConfigError(InvalidConfigError):
    """The accounts configuration is unusable; ``problems`` lists every reason."""


@dataclass(frozen=True)
class AccountConfig:
    """One Rackspace account to poll."""

    name: str
    username: str
    api_key: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    identity_url: str = DEFAULT_IDENTITY_URL
    regions: tuple[str, ...] | None = None  # None: every region in the service catalog
    generations: tuple[str, ...] = ("next",)
    rackconnect: bool | None = None  # None: from the token's rack_connect role
    managed: bool | None = None  # None: from the token's rax_managed role
    # (label, metadata key) pairs: the key's value as a label on rackconnect_server_info
    metadata_labels: tuple[tuple[str, str], ...] = ()
    # rackconnect: [ORD] sets rackconnect and limits where RackConnect is expected.
    rackconnect_regions: tuple[str, ...] | None = None
    # RackConnect v3.0 regions: None is auto (the catalog's rax:rackconnect regions), () off.
    rackconnect_v3: tuple[str, ...] | None = None
    # Whether identity_url was written out; a reload refuses to fall back to the default.
    identity_url_given: bool = field(default=True, compare=False, repr=False)


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
        account = _account_from_mapping(raw, where, path, Path(path).parent, problems)
        if account is not None:
            accounts.append(account)
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


def _account_from_mapping(
    raw: dict, where: str, path: str, base: Path, problems: list[str]
) -> AccountConfig | None:
    before = len(problems)

    def problem(key: str, message: str) -> None:
        line = line_of(raw, key) if key in raw else first_line(raw)
        problems.append(f"{path}:{line}: {where}.{key}: {message}")

    for key in unknown_keys(raw, ACCOUNT_KEYS):
        problem(str(key), f"unknown key (expected one of: {', '.join(ACCOUNT_KEYS)})")

    def text(key: str) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            problem(key, "must be a non-empty string")
            return None
        return value.strip()

    username = text("username")
    if username is None and "username" not in raw:
        problem("username", "missing (the Rackspace user name)")
    name = text("name") or username
    api_key = _secret(raw, "api_key", base, problem, text)
    password = _secret(raw, "password", base, problem, text)
    if (
        api_key is None
        and password is None
        and not any(k in raw for k in ("api_key", "api_key_file", "password", "password_file"))
    ):
        problem("api_key", "missing: give api_key, api_key_file, password or password_file")
    identity_url = text("identity_url") or DEFAULT_IDENTITY_URL
    if not identity_url.startswith(("http://", "https://")):
        problem("identity_url", f"must be an http:// or https:// URL, not {identity_url!r}")
    regions = _regions(raw.get("regions"), lambda m: problem("regions", m))
    generations = _generations(raw.get("generations"), lambda m: problem("generations", m))
    if is_identity_v1(identity_url):
        if "generations" not in raw:
            generations = ("first",)
        elif "next" in generations:
            problem("generations", V1_NEXT_GEN)
        if api_key is None and password is not None:
            problem("password" if "password" in raw else "password_file", V1_PASSWORD)
    rackconnect: bool | None = True
    rackconnect_regions: tuple[str, ...] | None = None
    if isinstance(raw.get("rackconnect"), list):
        rackconnect_regions = _regions(raw["rackconnect"], lambda m: problem("rackconnect", m))
    else:
        rackconnect = _auto_bool(raw, "rackconnect", problem)
    managed = _auto_bool(raw, "managed", problem)
    metadata_labels = _metadata_labels(raw.get("metadata_labels"), problem)
    rackconnect_v3 = _rackconnect_v3(
        raw.get("rackconnect_v3", "auto"), lambda m: problem("rackconnect_v3", m)
    )
    if len(problems) > before or username is None or name is None:
        return None
    return AccountConfig(
        name=name,
        username=username,
        api_key=api_key,
        password=password,
        identity_url=identity_url,
        regions=regions,
        generations=generations,
        rackconnect=rackconnect,
        managed=managed,
        metadata_labels=metadata_labels,
        rackconnect_regions=rackconnect_regions,
        rackconnect_v3=rackconnect_v3,
        identity_url_given="identity_url" in raw,
    )


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


def _metadata_labels(value: object, problem) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        problem("metadata_labels", "must be a mapping of LABEL: metadata key")
        return ()
    pairs: list[tuple[str, str]] = []
    for label, key in value.items():
        reason = metadata_label_problem(str(label))
        if reason is not None:
            problem("metadata_labels", reason)
        elif not isinstance(key, str) or not key.strip():
            problem("metadata_labels", f"{label}: the metadata key must be a non-empty string")
        else:
            pairs.append((str(label), key.strip()))
    return tuple(pairs)


def _secret(raw: dict, key: str, base: Path, problem, text) -> str | None:
    file_key = f"{key}_file"
    if key in raw and file_key in raw:
        problem(file_key, f"give either {key} or {file_key}, not both")
        return None
    if file_key in raw:
        file_name = text(file_key)
        return None if file_name is None else _read_secret(base / file_name, file_key, problem)
    return text(key)


def _read_secret(path: Path, key: str, problem) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problem(key, f"cannot read {str(path)!r}: {reason}")
        return None
    if not value:
        problem(key, f"{str(path)!r} is empty")
        return None
    return value


def _regions(value: object, problem) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items: list[object] = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, list):
        items = value
    else:
        problem("must be a list of region codes")
        return None
    regions: list[str] = []
    for item in items:
        code = item.strip().upper() if isinstance(item, str) else None
        if code not in REGIONS:
            problem(f"unknown region {item!r} (expected some of: {', '.join(REGIONS)})")
        elif code not in regions:
            regions.append(code)
    if not items:
        problem("must list at least one region (or be left out for every region)")
    return tuple(regions) or None


def _generations(value: object, problem) -> tuple[str, ...]:
    if value is None:
        return ("next",)
    if not isinstance(value, list) or not value:
        problem("must be a non-empty list")
        return ("next",)
    result: list[str] = []
    for item in value:
        if item not in GENERATIONS:
            problem(f"unknown generation {item!r} (expected some of: {', '.join(GENERATIONS)})")
        elif item not in result:
            result.append(item)
    return tuple(result) or ("next",)


def _auto_bool(raw: dict, key: str, problem) -> bool | None:
    value = raw.get(key, "auto")
    if value == "auto":
        return None
    if isinstance(value, bool):
        return value
    also = ", or a list of regions" if key == "rackconnect" else ""
    problem(key, f"must be auto, true or false{also}, not {value!r}")
    return None


def _rackconnect_v3(value: object, problem) -> tuple[str, ...] | None:
    """``rackconnect_v3:``: auto (None), false (no region) or the regions that have it."""
    if value == "auto":
        return None
    if value is False:
        return ()
    if isinstance(value, list):
        return _regions(value, problem) or ()
    problem(f"must be auto, false or a list of regions, not {value!r}")
    return None


def _check_unique(accounts: list[AccountConfig], problems: list[str], path: str) -> None:
    seen: set[str] = set()
    for account in accounts:
        if account.name in seen:
            problems.append(f"{path}: accounts: the name {account.name!r} is used twice")
        seen.add(account.name)


def load_environment(environ: Mapping[str, str]) -> Config:
    """One account from ``RACKSPACE_*`` environment variables."""
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = environ.get(name)
        return value.strip() if value and value.strip() else None

    def secret(name: str) -> str | None:
        file_name = get(f"{name}_FILE")
        if file_name and get(name):
            problems.append(f"{name} and {name}_FILE are both set: give only one")
            return None
        if file_name:
            return _read_secret(
                Path(file_name), f"{name}_FILE", lambda key, msg: problems.append(f"{key}: {msg}")
            )
        return get(name)

    username = get("RACKSPACE_USERNAME")
    if username is None:
        problems.append("RACKSPACE_USERNAME: not set (or give --config.file)")
    api_key = secret("RACKSPACE_API_KEY")
    password = secret("RACKSPACE_PASSWORD")
    if api_key is None and password is None and not problems:
        problems.append(
            "RACKSPACE_API_KEY: not set (set RACKSPACE_API_KEY, RACKSPACE_API_KEY_FILE, "
            "RACKSPACE_PASSWORD or RACKSPACE_PASSWORD_FILE)"
        )
    identity_url = get("RACKSPACE_IDENTITY_URL") or DEFAULT_IDENTITY_URL
    if not identity_url.startswith(("http://", "https://")):
        problems.append("RACKSPACE_IDENTITY_URL: must be an http:// or https:// URL")
    regions = _regions(
        get("RACKSPACE_REGIONS"), lambda m: problems.append(f"RACKSPACE_REGIONS: {m}")
    )
    generations: tuple[str, ...] = ("next",)
    if is_identity_v1(identity_url):
        generations = ("first",)
        if api_key is None and password is not None:
            problems.append(f"RACKSPACE_PASSWORD: {V1_PASSWORD} (set RACKSPACE_API_KEY)")
    if problems or username is None:
        raise ConfigError(problems)
    return Config(
        (
            AccountConfig(
                name=get("RACKSPACE_ACCOUNT_NAME") or username,
                username=username,
                api_key=api_key,
                password=password,
                identity_url=identity_url,
                regions=regions,
                generations=generations,
            ),
        )
    )
