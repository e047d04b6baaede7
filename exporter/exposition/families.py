"""The metric families: one table of names, types, HELP texts and labels.

Everything that writes a series or documents one reads its name from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class Family:
    """One metric family: its name, type (gauge, counter, histogram or info) and help text."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()

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


SERVER = ("account", "region", "server_id")
REGION = ("account", "region")

SERVER_INFO = Family(
    "rackconnect_server_info",
    "info",
    "Cloud server seen in the Cloud Servers API (always 1).",
    (*SERVER, "name", "generation"),
)
SERVER_CREATED = Family(
    "rackconnect_server_created_timestamp_seconds",
    "gauge",
    "When the server was created, from its created field (next generation only).",
    SERVER,
)
AUTOMATION_STATUS = Family(
    "rackconnect_automation_status",
    "gauge",
    "RackConnect automation status from the rackconnect_automation_status metadata key "
    "(1 for the current status, 0 for the others).",
    (*SERVER, "status"),
)
FEATURE_ENABLED = Family(
    "rackconnect_automation_feature_enabled",
    "gauge",
    "1 if the RackConnect automation feature is ENABLED in the server metadata, else 0.",
    (*SERVER, "feature"),
)
MANAGED_STATUS = Family(
    "rackconnect_managed_operations_status",
    "gauge",
    "Managed Operations post-build automation status from the rax_service_level_automation "
    "metadata key (1 for the current status, 0 for the others).",
    (*SERVER, "status"),
)
UNPROCESSABLE_INFO = Family(
    "rackconnect_automation_unprocessable_info",
    "info",
    "Why RackConnect could not process the server, from rackconnect_unprocessable_reason.",
    (*SERVER, "reason"),
)
SERVER_STATUS = Family(
    "rackconnect_server_status",
    "gauge",
    "The server's Nova status (ACTIVE, BUILD, ERROR, ...) as the status label; one series "
    "per server, always 1.",
    (*SERVER, "status"),
)
SERVER_READY = Family(
    "rackconnect_server_ready",
    "gauge",
    "1 when the Nova status is ACTIVE and RackConnect and Managed Operations automation are "
    "both done for the server (RackConnect only where it is expected).",
    SERVER,
)
PER_SERVER_FAMILIES = (
    SERVER_INFO,
    SERVER_CREATED,
    AUTOMATION_STATUS,
    FEATURE_ENABLED,
    MANAGED_STATUS,
    UNPROCESSABLE_INFO,
    SERVER_STATUS,
    SERVER_READY,
)

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


def shard_families(index: int, total: int) -> list[tuple[Family, bytes]]:
    """The shard families of replica ``index`` of ``total``, rendered for ``Store.set_extra``."""
    ordinal = labels(shard_ordinal=str(index))
    return [
        (SHARD_ORDINAL, f"{SHARD_ORDINAL.name}{{{ordinal}}} {index}\n".encode()),
        (TOTAL_SHARDS, f"{TOTAL_SHARDS.name} {total}\n".encode()),
    ]


# The agent's own families, for the one server it runs on.
GATEWAY_INFO = Family(
    "rackconnect_gateway_info",
    "info",
    "RackConnect gateway IP of the local server from the in-server API (absent until assigned).",
    (*SERVER, "gateway_ip"),
)
TASK_STATUS = Family(
    "rackconnect_automation_task_status",
    "gauge",
    "RackConnect automation tasks of the local server and their status, from the in-server "
    "API's automation_status/details (always 1).",
    (*SERVER, "task", "status"),
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
    *PER_SERVER_FAMILIES,
    *HISTORY_FAMILIES,
    SHARD_ORDINAL,
    TOTAL_SHARDS,
    GATEWAY_INFO,
    TASK_STATUS,
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
