"""One account's settings and their one validation, for a config file entry and for the
``RACKSPACE_*`` environment alike.

Problems are collected, not raised, each naming the key (in a file, with its line) or the
variable it is about. Secrets are never part of a message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from exporter.exposition.families import metadata_label_problem
from exporter.yamlcheck import first_line, line_of, unknown_keys

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


# How each source words the problems that read differently in a file and in variables.
FILE_WORDS = {
    "no_username": "{name}: missing (the Rackspace user name)",
    "both": "{other}: give either {key} or {key}_file, not both",
    "no_secret": "{name}: missing: give api_key, api_key_file, password or password_file",
    "bad_url": "{name}: must be an http:// or https:// URL, not {value!r}",
    "v1_password": "{name}: " + V1_PASSWORD,
}
ENV_WORDS = {
    "no_username": "{name}: not set (or give --config.file)",
    "both": "{name} and {other} are both set: give only one",
    "no_secret": "{name}: not set (set RACKSPACE_API_KEY, RACKSPACE_API_KEY_FILE, "
    "RACKSPACE_PASSWORD or RACKSPACE_PASSWORD_FILE)",
    "bad_url": "{name}: must be an http:// or https:// URL",
    "v1_password": "{name}: " + V1_PASSWORD + " (set RACKSPACE_API_KEY)",
}
# The account keys the environment can give, and their variables.
ENV_VARIABLES = {
    "name": "RACKSPACE_ACCOUNT_NAME",
    "username": "RACKSPACE_USERNAME",
    "api_key": "RACKSPACE_API_KEY",
    "api_key_file": "RACKSPACE_API_KEY_FILE",
    "password": "RACKSPACE_PASSWORD",
    "password_file": "RACKSPACE_PASSWORD_FILE",
    "identity_url": "RACKSPACE_IDENTITY_URL",
    "regions": "RACKSPACE_REGIONS",
}


@dataclass
class Source:
    """One account's settings as given, and how its problems name them."""

    raw: dict
    base: Path  # secret files are read relative to this folder
    name: Callable[[str], str]  # a key as a problem names it
    words: Mapping[str, str]
    problems: list[str]

    @classmethod
    def in_file(cls, raw: dict, path: str, where: str, problems: list[str]) -> Source:
        """An entry of a configuration file's ``accounts:`` list."""

        def name(key: str) -> str:
            line = line_of(raw, key) if key in raw else first_line(raw)
            return f"{path}:{line}: {where}.{key}"

        return cls(raw, Path(path).parent, name, FILE_WORDS, problems)

    @classmethod
    def in_environment(cls, environ: Mapping[str, str], problems: list[str]) -> Source:
        """The ``RACKSPACE_*`` variables that are set and not blank."""
        raw = {
            key: environ[variable].strip()
            for key, variable in ENV_VARIABLES.items()
            if environ.get(variable, "").strip()
        }
        return cls(raw, Path(), ENV_VARIABLES.__getitem__, ENV_WORDS, problems)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.name(key)}: {message}")

    def say(self, what: str, key: str, other: str = "", value: object = None) -> None:
        """One of the problems each source words its own way."""
        words = self.words[what]
        other_name = self.name(other) if other else ""
        self.problems.append(
            words.format(name=self.name(key), other=other_name, key=key, value=value)
        )


def validate(source: Source) -> AccountConfig | None:
    """The account of one source of settings, or None after adding its problems."""
    raw, problem, before = source.raw, source.problem, len(source.problems)

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
        source.say("no_username", "username")
    name = text("name") or username
    api_key = _secret(source, "api_key", text)
    password = _secret(source, "password", text)
    if (
        api_key is None
        and password is None
        and not any(k in raw for k in ("api_key", "api_key_file", "password", "password_file"))
    ):
        source.say("no_secret", "api_key")
    identity_url = text("identity_url") or DEFAULT_IDENTITY_URL
    if not identity_url.startswith(("http://", "https://")):
        source.say("bad_url", "identity_url", value=identity_url)
    regions = _regions(raw.get("regions"), lambda m: problem("regions", m))
    generations = _generations(raw.get("generations"), lambda m: problem("generations", m))
    if is_identity_v1(identity_url):
        if "generations" not in raw:
            generations = ("first",)
        elif "next" in generations:
            problem("generations", V1_NEXT_GEN)
        if api_key is None and password is not None:
            source.say("v1_password", "password" if "password" in raw else "password_file")
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
    if len(source.problems) > before or username is None or name is None:
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


def _secret(source: Source, key: str, text: Callable[[str], str | None]) -> str | None:
    file_key = f"{key}_file"
    if key in source.raw and file_key in source.raw:
        source.say("both", key, other=file_key)
        return None
    if file_key in source.raw:
        file_name = text(file_key)
        if file_name is None:
            return None
        return _read_secret(source.base / file_name, file_key, source.problem)
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
