"""The metric families: one table of names, types, HELP texts and labels.

Everything that writes a series or documents one reads its name from here. A per-server
family carries the function that writes a server's lines of it: adding one is one entry
here (and its row in the README).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from operator import attrgetter, eq

from exporter.exposition.families_v3 import (
    V3_POLL_ERRORS,
    V3_POOL_INFO,
    V3_SERVER_FAMILIES,
    V3_UP,
)
from exporter.exposition.text import Family, Lines, ServerFamily, escape_label, number
from exporter.model import AUTOMATION_STATUSES, FEATURE_KEYS, MANAGED_STATUSES, Server

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


SERVER = ("account", "region", "server_id")
REGION = ("account", "region")


def state_set(value: Callable[[Server], str | None], statuses: tuple[str, ...]) -> Lines:
    """Lines of a state set: a ``status`` series per state, 1 for the server's ``value``.

    No lines when the server has no value; a value is always one of ``statuses``. The
    states are written in the order Prometheus sorts the series (see polling/incremental.py).
    """
    # current status -> the tail of every line of the set, after the other labels
    tails = {
        current: tuple(f',status="{s}"}} {int(s == current)}\n' for s in sorted(statuses))
        for current in statuses
    }

    def lines(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
        current = value(server)
        if current is None:
            return ""
        prefix = name + labels
        return prefix + prefix.join(tails[current])

    return lines


def labelled(label: str, value: Callable[[Server], str | None]) -> Lines:
    """Lines of one series of value 1 with ``label`` set to the server's ``value``, if any."""
    tail = f',{label}="'

    def lines(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
        found = value(server)
        return "" if found is None else f'{name}{labels}{tail}{escape_label(found)}"}} 1\n'

    return lines


def _info(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    extra = ""
    if server.labels:
        extra = "".join(f',{label}="{escape_label(value)}"' for label, value in server.labels)
    return (
        f'{name}{labels},name="{escape_label(server.name)}",'
        f'generation="{server.generation}"{extra}}} 1\n'
    )


def _created(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    return "" if server.created is None else f"{name}{labels}}} {number(server.created)}\n"


def _feature_line(feature: str, on: bool) -> str:
    return f',feature="{escape_label(feature)}"}} {int(on)}\n'


_FEATURE_LINES = {(f, on): _feature_line(f, on) for f in FEATURE_KEYS for on in (False, True)}


# Which features each run of the features family writes: one known feature, then the others.
_FEATURE_RUNS: tuple[Callable[[str], bool], ...] = (
    *(partial(eq, feature) for feature in sorted(FEATURE_KEYS)),
    lambda feature: feature not in FEATURE_KEYS,
)


def _features(wanted: Callable[[str], bool]) -> Lines:
    """The lines of the features that ``wanted`` picks."""

    def lines(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
        prefix = name + labels
        return "".join(
            prefix + (_FEATURE_LINES.get((f, on)) or _feature_line(f, on))
            for f, on in server.features
            if wanted(f)
        )

    return lines


def _ready(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    # Records carry v3.0 resources only in a v3.0 region, so v3=True asks v3.0 just there.
    return f"{name}{labels}}} {int(server.ready(rackconnect, managed, v3=True))}\n"


def _tasks(server: Server, name: str, labels: str, rackconnect: bool, managed: bool) -> str:
    return "".join(
        f'{name}{labels},task="{escape_label(task)}",status="{escape_label(status)}"}} 1\n'
        for task, status in server.tasks
    )


# A per-server family is one entry here: its name, type, HELP, labels and lines function.
PER_SERVER_FAMILIES = (
    SERVER_INFO := ServerFamily(
        "rackconnect_server_info",
        "info",
        "Cloud server seen in the Cloud Servers API (always 1).",
        (*SERVER, "name", "generation"),
        lines=_info,
    ),
    SERVER_CREATED := ServerFamily(
        "rackconnect_server_created_timestamp_seconds",
        "gauge",
        "When the server was created, from its created field (next generation only).",
        SERVER,
        lines=_created,
    ),
    AUTOMATION_STATUS := ServerFamily(
        "rackconnect_automation_status",
        "gauge",
        "RackConnect automation status from the rackconnect_automation_status metadata key "
        "(1 for the current status, 0 for the others).",
        (*SERVER, "status"),
        lines=state_set(attrgetter("automation_status"), AUTOMATION_STATUSES),
    ),
    # Written one feature at a time (then any other feature an in-server API names): the
    # series then come in the order Prometheus sorts them, by feature before region.
    *(
        ServerFamily(
            "rackconnect_automation_feature_enabled",
            "gauge",
            "1 if the RackConnect automation feature is ENABLED in the server metadata, else 0.",
            (*SERVER, "feature"),
            lines=_features(picks),
        )
        for picks in _FEATURE_RUNS
    ),
    MANAGED_STATUS := ServerFamily(
        "rackconnect_managed_operations_status",
        "gauge",
        "Managed Operations post-build automation status from the rax_service_level_automation "
        "metadata key (1 for the current status, 0 for the others).",
        (*SERVER, "status"),
        lines=state_set(attrgetter("managed_status"), MANAGED_STATUSES),
    ),
    UNPROCESSABLE_INFO := ServerFamily(
        "rackconnect_automation_unprocessable_info",
        "info",
        "Why RackConnect could not process the server, from rackconnect_unprocessable_reason.",
        (*SERVER, "reason"),
        lines=labelled("reason", attrgetter("unprocessable_reason")),
    ),
    SERVER_STATUS := ServerFamily(
        "rackconnect_server_status",
        "gauge",
        "The server's Nova status (ACTIVE, BUILD, ERROR, ...) as the status label; one series "
        "per server, always 1.",
        (*SERVER, "status"),
        lines=labelled("status", attrgetter("status")),
    ),
    SERVER_READY := ServerFamily(
        "rackconnect_server_ready",
        "gauge",
        "1 when the Nova status is ACTIVE and RackConnect and Managed Operations automation "
        "are both done for the server (RackConnect only where it is expected; in a RackConnect "
        "v3.0 region, every public IP and pool membership ACTIVE).",
        SERVER,
        lines=_ready,
    ),
    *V3_SERVER_FAMILIES,
)
"""The exporter's per-server families, in the order of the exposition."""

AGENT_FAMILIES = (
    *PER_SERVER_FAMILIES,
    GATEWAY_INFO := ServerFamily(
        "rackconnect_gateway_info",
        "info",
        "RackConnect gateway IP of the local server from the in-server API (absent until "
        "assigned).",
        (*SERVER, "gateway_ip"),
        lines=labelled("gateway_ip", attrgetter("gateway_ip")),
    ),
    TASK_STATUS := ServerFamily(
        "rackconnect_automation_task_status",
        "gauge",
        "RackConnect automation tasks of the local server and their status, from the "
        "in-server API's automation_status/details (always 1).",
        (*SERVER, "task", "status"),
        lines=_tasks,
    ),
)
"""The agent's per-server families: the exporter's, then the in-server API's own."""

AUTOMATION_DURATION = Family(
    "rackconnect_automation_duration_seconds",
    "histogram",
    "Time from a server's creation to the terminal state its automation was seen to reach "
    "(rackconnect or managed), observed when a poll sees the change.",
    (*REGION, "automation", "outcome"),
)
AUTOMATION_TRANSITIONS = Family(
    "rackconnect_automation_transitions_total",
    "counter",
    "Automation state changes seen between two polls (none: the metadata key is absent).",
    (*REGION, "automation", "from", "to"),
)
HISTORY_FAMILIES = (AUTOMATION_DURATION, AUTOMATION_TRANSITIONS)

BUILD_INFO = Family(
    "rackconnect_exporter_build_info",
    "info",
    "Version of the exporter, the source revision it was built from, and the version of "
    "Python (always 1).",
    ("version", "revision", "python_version"),
)
ACCOUNT_INFO = Family(
    "rackconnect_account_info",
    "info",
    "Account as seen in its Identity token: tenant and whether it has RackConnect and "
    "Managed Operations (always 1).",
    ("account", "tenant_id", "rackconnect", "managed"),
)
REGION_INFO = Family(
    "rackconnect_region_info",
    "info",
    "Account and region polled, and whether RackConnect automation is expected there "
    "(rackconnect: false outside the declared RackConnect regions; always 1).",
    (*REGION, "rackconnect"),
)
UP = Family(
    "rackconnect_up",
    "gauge",
    "1 if the last poll of the account and region succeeded, else 0.",
    REGION,
)
LAST_SUCCESS = Family(
    "rackconnect_last_successful_poll_timestamp_seconds",
    "gauge",
    "When the last successful poll of the account and region finished.",
    REGION,
)
POLL_DURATION = Family(
    "rackconnect_poll_duration_seconds",
    "gauge",
    "How long the last poll of the account and region took.",
    REGION,
)
POLL_ERRORS = Family(
    "rackconnect_poll_errors_total",
    "counter",
    "Failed polls of the account and region, by reason.",
    (*REGION, "reason"),
)
CONFIG_RELOAD_OK = Family(
    "rackconnect_config_last_reload_successful",
    "gauge",
    "1 if the last load of the configuration (at start, on SIGHUP or POST /-/reload) "
    "succeeded, else 0.",
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
    (*REGION, "api", "code"),
)

# Sharding (--shard.total > 1 only), as kube-state-metrics exposes its own.
SHARD_ORDINAL = Family(
    "rackconnect_exporter_shard_ordinal",
    "gauge",
    "This replica's --shard.index, as label and value; only when sharding is on.",
    ("shard_ordinal",),
)
TOTAL_SHARDS = Family(
    "rackconnect_exporter_total_shards",
    "gauge",
    "The --shard.total this replica was started with; only when sharding is on.",
)


FAMILIES = (
    BUILD_INFO,
    CONFIG_RELOAD_OK,
    CONFIG_RELOAD_TIME,
    ACCOUNT_INFO,
    REGION_INFO,
    UP,
    LAST_SUCCESS,
    POLL_DURATION,
    POLL_ERRORS,
    API_REQUESTS,
    V3_UP,
    V3_POLL_ERRORS,
    V3_POOL_INFO,
    *AGENT_FAMILIES,
    *HISTORY_FAMILIES,
    SHARD_ORDINAL,
    TOTAL_SHARDS,
)
"""Every family, in the order of the exposition."""

PROCESS_PREFIX = "process_"  # prometheus_client's ProcessCollector families

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Labels that Prometheus itself sets or that histograms and summaries use.
_PROMETHEUS_LABELS = ("job", "instance", "le", "quantile")


def reserved_labels() -> frozenset[str]:
    """Label names that ``--server.metadata-label`` may not use."""
    return frozenset(label for f in FAMILIES for label in f.labels) | set(_PROMETHEUS_LABELS)


def metadata_label_problem(label: str) -> str | None:
    """Why ``label`` cannot name a metadata label, or None when it can."""
    if not _LABEL_NAME.fullmatch(label):
        return f"{label!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
    if label.startswith("__"):
        return f"{label!r}: names starting with __ are reserved for Prometheus"
    if label in reserved_labels():
        return f"{label!r} is a label the exporter sets itself"
    return None
