"""Snapshot -> exposition bytes, in the Prometheus text format and in OpenMetrics.

Rendering happens once per published snapshot, never per scrape. Each server's lines are
cached and re-rendered only when that server's record changes, so a poll that changes
little costs little (the kube-state-metrics approach).
"""

from __future__ import annotations

import platform
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from exporter import __version__
from exporter.bodies import Part
from exporter.flags import format_duration
from exporter.model import AUTOMATION_STATUSES, FEATURE_KEYS, MANAGED_STATUSES, Server

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class Family:
    """One metric family: its name, type (gauge, counter or info) and help text."""

    name: str
    kind: str
    help: str

    def header(self, openmetrics: bool, note: str) -> bytes:
        """The ``# HELP`` and ``# TYPE`` lines."""
        name, kind = self.name, self.kind
        if openmetrics and kind == "counter":
            name = name.removesuffix("_total")
        elif openmetrics and kind == "info":
            name = name.removesuffix("_info")
        elif kind == "info":
            kind = "gauge"
        text = escape_help(f"{self.help} {note}".strip())
        return f"# HELP {name} {text}\n# TYPE {name} {kind}\n".encode()


SERVER_INFO = Family(
    "rackconnect_server_info", "info", "Cloud server seen in the Cloud Servers API (always 1)."
)
SERVER_CREATED = Family(
    "rackconnect_server_created_timestamp_seconds",
    "gauge",
    "When the server was created, from its created field (next generation only).",
)
AUTOMATION_STATUS = Family(
    "rackconnect_automation_status",
    "gauge",
    "RackConnect automation status from the rackconnect_automation_status metadata key "
    "(1 for the current status, 0 for the others).",
)
FEATURE_ENABLED = Family(
    "rackconnect_automation_feature_enabled",
    "gauge",
    "1 if the RackConnect automation feature is ENABLED in the server metadata, else 0.",
)
MANAGED_STATUS = Family(
    "rackconnect_managed_operations_status",
    "gauge",
    "Managed Operations post-build automation status from the rax_service_level_automation "
    "metadata key (1 for the current status, 0 for the others).",
)
UNPROCESSABLE_INFO = Family(
    "rackconnect_automation_unprocessable_info",
    "info",
    "Why RackConnect could not process the server, from rackconnect_unprocessable_reason.",
)
SERVER_READY = Family(
    "rackconnect_server_ready",
    "gauge",
    "1 when RackConnect and Managed Operations automation are both done for the server.",
)
PER_SERVER_FAMILIES = (
    SERVER_INFO,
    SERVER_CREATED,
    AUTOMATION_STATUS,
    FEATURE_ENABLED,
    MANAGED_STATUS,
    UNPROCESSABLE_INFO,
    SERVER_READY,
)

BUILD_INFO = Family(
    "rackconnect_exporter_build_info", "info", "Version of the exporter and of Python (always 1)."
)
ACCOUNT_INFO = Family(
    "rackconnect_account_info",
    "info",
    "Account as seen in its Identity token: tenant and whether it has RackConnect and "
    "Managed Operations (always 1).",
)
UP = Family(
    "rackconnect_up", "gauge", "1 if the last poll of the account and region succeeded, else 0."
)
LAST_SUCCESS = Family(
    "rackconnect_last_successful_poll_timestamp_seconds",
    "gauge",
    "When the last successful poll of the account and region finished.",
)
POLL_DURATION = Family(
    "rackconnect_poll_duration_seconds",
    "gauge",
    "How long the last poll of the account and region took.",
)
POLL_ERRORS = Family(
    "rackconnect_poll_errors_total", "counter", "Failed polls of the account and region, by reason."
)
CONFIG_RELOAD_OK = Family(
    "rackconnect_config_last_reload_successful",
    "gauge",
    "1 if the last load of the configuration (at start or on SIGHUP) succeeded, else 0.",
)
CONFIG_RELOAD_TIME = Family(
    "rackconnect_config_last_reload_success_timestamp_seconds",
    "gauge",
    "When the configuration was last loaded successfully.",
)
API_REQUESTS = Family(
    "rackconnect_api_requests_total",
    "counter",
    "HTTP requests made to Rackspace APIs, by API and response code.",
)


def escape_label(value: str) -> str:
    """Escape a label value for both exposition formats."""
    if "\\" not in value and "\n" not in value and '"' not in value:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(value: str) -> str:
    """Escape a HELP text."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def labels(**pairs: str) -> str:
    """``name="value",...`` in the order given, values escaped."""
    return ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs.items())


def _num(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return floatToGoString(value)


def _encode(text: str) -> bytes:
    # Lone surrogates can come from JSON escapes in upstream data: they become "?".
    return text.encode("utf-8", "replace")


def _state_lines(statuses: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Current status -> the tail of every line of the state set, after the labels."""
    return {
        current: tuple(f',status="{s}"}} {int(s == current)}\n' for s in statuses)
        for current in statuses
    }


_AUTOMATION_LINES = _state_lines(AUTOMATION_STATUSES)
_MANAGED_LINES = _state_lines(MANAGED_STATUSES)


def _feature_line(feature: str, on: bool) -> str:
    return f',feature="{escape_label(feature)}"}} {int(on)}\n'


_FEATURE_LINES = {(f, on): _feature_line(f, on) for f in FEATURE_KEYS for on in (False, True)}


def render_server(server: Server, account: str, region: str, rackconnect: bool, managed: bool):
    """One server's lines, one bytes fragment per family of PER_SERVER_FAMILIES."""
    # Lines of one family share everything up to the last label: "prefix + tail" each.
    head = (
        f'{{account="{escape_label(account)}",region="{escape_label(region)}",'
        f'server_id="{escape_label(server.id)}"'
    )
    info = (
        f'rackconnect_server_info{head},name="{escape_label(server.name)}",'
        f'generation="{server.generation}"}} 1\n'
    )
    created = (
        ""
        if server.created is None
        else f"rackconnect_server_created_timestamp_seconds{head}}} {_num(server.created)}\n"
    )
    automation = ""
    if server.automation_status is not None:
        prefix = "rackconnect_automation_status" + head
        automation = prefix + prefix.join(_AUTOMATION_LINES[server.automation_status])
    features = ""
    if server.features:
        prefix = "rackconnect_automation_feature_enabled" + head
        features = prefix + prefix.join(
            _FEATURE_LINES.get((f, on)) or _feature_line(f, on) for f, on in server.features
        )
    operations = ""
    if server.managed_status is not None:
        prefix = "rackconnect_managed_operations_status" + head
        operations = prefix + prefix.join(_MANAGED_LINES[server.managed_status])
    reason = (
        ""
        if server.unprocessable_reason is None
        else f"rackconnect_automation_unprocessable_info{head},"
        f'reason="{escape_label(server.unprocessable_reason)}"}} 1\n'
    )
    ready = f"rackconnect_server_ready{head}}} {int(server.ready(rackconnect, managed))}\n"
    return (
        _encode(info),
        _encode(created),
        _encode(automation),
        _encode(features),
        _encode(operations),
        _encode(reason),
        _encode(ready),
    )


_FAMILIES = len(PER_SERVER_FAMILIES)


class RegionRenderer:
    """Renders the per-server families of one account and region, caching per server.

    A server's cached lines are not kept as separate strings: they are where they already
    are, in the region's joined fragments, found by offset (``_spans``, per server and
    family: start, then length). That halves the memory of a large fleet.
    """

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        # server id -> (record, rackconnect, managed, row in _spans)
        self._cache: dict[str, tuple[Server, bool, bool, int]] = {}
        self._spans = array("Q")
        self._last: tuple[bytes, ...] | None = None
        self.rendered = 0  # servers rendered by the last call, for tests and logs

    def render(self, servers: Iterable[Server], rackconnect: bool, managed: bool):
        """Per-family fragments for the region; re-renders only servers that changed.

        When nothing changed (same servers, same order) it returns the very tuple it
        returned last time, so callers can skip work by identity.
        """
        old = self._cache
        servers = list(servers)
        hits: list[tuple[Server, bool, bool, int] | None] = []
        for server in servers:
            hit = old.get(server.id)
            if (
                hit is not None
                and (hit[0] is server or hit[0] == server)
                and hit[1] == rackconnect
                and hit[2] == managed
            ):
                hits.append(hit)
            else:
                hits.append(None)
        self.rendered = hits.count(None)
        if (
            self._last is not None
            and not self.rendered
            and len(servers) == len(old)
            and [s.id for s in servers] == list(old)
        ):
            return self._last
        last = self._last or (b"",) * _FAMILIES
        views = [memoryview(b) for b in last]
        spans = self._spans
        width = 2 * _FAMILIES
        pieces: list[tuple[bytes | memoryview, ...]] = []
        for server, hit in zip(servers, hits, strict=True):
            if hit is None:
                pieces.append(
                    render_server(server, self.account, self.region, rackconnect, managed)
                )
            else:
                row = hit[3] * width
                pieces.append(
                    tuple(
                        views[i][spans[row + i] : spans[row + i] + spans[row + _FAMILIES + i]]
                        for i in range(_FAMILIES)
                    )
                )
        joined = tuple(b"".join(p[i] for p in pieces) for i in range(_FAMILIES))
        cache: dict[str, tuple[Server, bool, bool, int]] = {}
        new_spans = array("Q")
        offsets = [0] * _FAMILIES
        for row, (server, piece) in enumerate(zip(servers, pieces, strict=True)):
            lengths = [len(f) for f in piece]
            new_spans.extend(offsets)
            new_spans.extend(lengths)
            offsets = [o + n for o, n in zip(offsets, lengths, strict=True)]
            cache[server.id] = (server, rackconnect, managed, row)
        self._cache, self._spans, self._last = cache, new_spans, joined
        return joined


@dataclass(frozen=True)
class RegionHealth:
    """The health of one account and region, as the exposition needs it."""

    account: str
    region: str
    up: bool
    last_success: float | None
    duration: float | None


@dataclass(frozen=True)
class AccountFacts:
    """What ``rackconnect_account_info`` says about an account."""

    account: str
    tenant_id: str
    rackconnect: bool
    managed: bool


def render(
    *,
    accounts: Iterable[AccountFacts],
    regions: Iterable[RegionHealth],
    server_fragments: Iterable[tuple[bytes | Part, ...]],
    errors: Mapping[tuple[str, str, str], int],
    requests: Mapping[tuple[str, str, str, str], int],
    interval: float,
    openmetrics: bool,
    config_reload: tuple[bool, float | None] | None = None,
    extra: Iterable[tuple[Family, bytes]] = (),
) -> bytes:
    """The whole exposition, from already rendered per-region fragments and health data.

    ``extra`` adds families of one mode only (the agent's), after the per-server ones.
    """
    return b"".join(
        p.data if isinstance(p, Part) else p
        for p in render_parts(
            accounts=accounts,
            regions=regions,
            server_fragments=server_fragments,
            errors=errors,
            requests=requests,
            interval=interval,
            openmetrics=openmetrics,
            config_reload=config_reload,
            extra=extra,
        )
    )


def render_parts(
    *,
    accounts: Iterable[AccountFacts],
    regions: Iterable[RegionHealth],
    server_fragments: Iterable[tuple[bytes | Part, ...]],
    errors: Mapping[tuple[str, str, str], int],
    requests: Mapping[tuple[str, str, str, str], int],
    interval: float,
    openmetrics: bool,
    config_reload: tuple[bool, float | None] | None = None,
    extra: Iterable[tuple[Family, bytes]] = (),
) -> list[bytes | Part]:
    """The exposition as a list of parts: the per-region fragments are used as they are.

    ``extra`` adds families of one mode only (the agent's), after the per-server ones.
    """
    note = f"Cached: refreshed every poll interval ({format_duration(interval)})."
    chunks: list[bytes | Part] = []

    def family(fam: Family, body: str | bytes, cached: bool = True) -> None:
        chunks.append(fam.header(openmetrics, note if cached else ""))
        chunks.append(_encode(body) if isinstance(body, str) else body)

    build = labels(version=__version__, python_version=platform.python_version())
    family(BUILD_INFO, f"rackconnect_exporter_build_info{{{build}}} 1\n", cached=False)
    if config_reload is not None:
        ok, when = config_reload
        family(CONFIG_RELOAD_OK, f"{CONFIG_RELOAD_OK.name} {int(ok)}\n", cached=False)
        if when is not None:
            family(CONFIG_RELOAD_TIME, f"{CONFIG_RELOAD_TIME.name} {_num(when)}\n", cached=False)
    family(
        ACCOUNT_INFO,
        "".join(
            "rackconnect_account_info{"
            + labels(
                account=a.account,
                tenant_id=a.tenant_id,
                rackconnect=_bool(a.rackconnect),
                managed=_bool(a.managed),
            )
            + "} 1\n"
            for a in accounts
        ),
    )
    regions = list(regions)
    family(
        UP,
        "".join(
            f"rackconnect_up{{{labels(account=r.account, region=r.region)}}} {int(r.up)}\n"
            for r in regions
        ),
    )
    family(
        LAST_SUCCESS,
        "".join(
            f"rackconnect_last_successful_poll_timestamp_seconds"
            f"{{{labels(account=r.account, region=r.region)}}} {_num(r.last_success)}\n"
            for r in regions
            if r.last_success is not None
        ),
    )
    family(
        POLL_DURATION,
        "".join(
            f"rackconnect_poll_duration_seconds"
            f"{{{labels(account=r.account, region=r.region)}}} {_num(r.duration)}\n"
            for r in regions
            if r.duration is not None
        ),
    )
    family(
        POLL_ERRORS,
        "".join(
            f"rackconnect_poll_errors_total{{{labels(account=a, region=r, reason=reason)}}} {n}\n"
            for (a, r, reason), n in sorted(errors.items())
        ),
    )
    family(
        API_REQUESTS,
        "".join(
            f"rackconnect_api_requests_total"
            f"{{{labels(account=a, region=r, api=api, code=code)}}} {n}\n"
            for (a, r, api, code), n in sorted(requests.items())
        ),
    )
    fragments = list(server_fragments)
    for i, fam in enumerate(PER_SERVER_FAMILIES):
        chunks.append(fam.header(openmetrics, note))
        chunks.extend(f[i] for f in fragments)
    for fam, body in extra:
        family(fam, body)
    if openmetrics:
        chunks.append(b"# EOF\n")
    return chunks


def _bool(value: bool) -> str:
    return "true" if value else "false"
