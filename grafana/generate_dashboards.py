"""Generate the Grafana dashboards in grafana/dashboards/ from one description.

Run ``python grafana/generate_dashboards.py`` after editing this file and commit both;
``--check`` exits 1 when the committed JSON differs from what this file generates.
The dashboard uids are fixed: alert rules link to them (``dashboard_url``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
FLEET_UID = "rackconnect-fleet"
HEALTH_UID = "rackconnect-exporter-health"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Matchers for the account and region template variables.
SEL = 'account=~"$account", region=~"$region"'
SERVER = "account, region, server_id"
NAME_JOIN = f"* on ({SERVER}) group_left (name) max by ({SERVER}, name) (rackconnect_server_info)"
NOT_READY = f"on ({SERVER}) (rackconnect_server_ready{{{SEL}}} == 0)"
RACKCONNECT_STATUS_COLORS = {
    "DEPLOYED": "green",
    "DEPLOYING": "blue",
    "FAILED": "red",
    "UNPROCESSABLE": "orange",
    "UNKNOWN": "purple",
}
MANAGED_STATUS_COLORS = {
    "Complete": "green",
    "Pending": "yellow",
    "In Progress": "blue",
    "Build Error": "red",
    "Authentication Error": "dark-red",
    "UNKNOWN": "purple",
}

Json = dict[str, Any]


def target(expr: str, legend: str = "", ref: str = "A", *, table: bool = False) -> Json:
    """A Prometheus query; ``table`` makes it an instant query in table format."""
    query: Json = {"datasource": DATASOURCE, "refId": ref, "expr": expr}
    if table:
        query |= {"instant": True, "range": False, "format": "table"}
    else:
        query |= {"legendFormat": legend or "__auto", "range": True}
    return query


def panel(
    kind: str,
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    *,
    unit: str = "short",
    options: Json | None = None,
    custom: Json | None = None,
    overrides: list[Json] | None = None,
    transformations: list[Json] | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    defaults: Json | None = None,
) -> Json:
    """One panel at grid position (x, y, w, h); ``defaults`` adds field defaults."""
    x, y, w, h = grid
    steps = [{"color": color, "value": value} for value, color in thresholds or [(None, "green")]]
    result: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": custom or {},
                "thresholds": {"mode": "absolute", "steps": steps},
                **(defaults or {}),
            },
            "overrides": overrides or [],
        },
        "options": options or {},
    }
    if transformations:
        result["transformations"] = transformations
    return result


def timeseries(
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    *,
    unit: str = "short",
    stacked: bool = False,
    bars: bool = False,
    colors: dict[str, str] | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> Json:
    """A time series panel, optionally stacked or drawn as bars, with fixed series colours."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars or stacked else 10,
        "lineWidth": 1,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "showPoints": "never",
    }
    if thresholds:
        custom["thresholdsStyle"] = {"mode": "line"}
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
        }
        for name, color in (colors or {}).items()
    ]
    options = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel(
        "timeseries",
        title,
        description,
        grid,
        targets,
        unit=unit,
        options=options,
        custom=custom,
        overrides=overrides,
        thresholds=thresholds,
    )


def stat(
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    expr: str,
    thresholds: list[tuple[float | None, str]],
    *,
    unit: str = "short",
) -> Json:
    """A single-number panel coloured by thresholds."""
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "area",
        "textMode": "value",
    }
    return panel(
        "stat",
        title,
        description,
        grid,
        [target(expr, title)],
        unit=unit,
        options=options,
        thresholds=thresholds,
    )


def table(
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    columns: dict[str, str],
    *,
    units: dict[str, str] | None = None,
    sort_by: str | None = None,
) -> Json:
    """A table of instant queries merged on their labels; ``columns`` maps field to header."""
    hidden = {"Time": True, "Value": True} | {
        f"Value #{t['refId']}": True for t in targets if f"Value #{t['refId']}" not in columns
    }
    transformations = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": hidden,
                "includeByName": {},
                "indexByName": {field: i for i, field in enumerate(columns)},
                "renameByName": columns,
            },
        },
    ]
    overrides = [
        {
            "matcher": {"id": "byName", "options": columns[field]},
            "properties": [{"id": "unit", "value": unit}],
        }
        for field, unit in (units or {}).items()
    ]
    options: Json = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return panel(
        "table",
        title,
        description,
        grid,
        targets,
        options=options,
        custom={"align": "auto", "filterable": True},
        overrides=overrides,
        transformations=transformations,
    )


def row(title: str, y: int) -> Json:
    """A collapsible-looking row header."""
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def variable(name: str, label: str, query: str) -> Json:
    """A multi-value query variable whose 'All' is the regex ``.*``."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "options": [],
        "regex": "",
    }


def dashboard(
    uid: str, title: str, description: str, panels: list[Json], variables: list[Json]
) -> Json:
    """A whole dashboard with a datasource variable and links to its sibling."""
    datasource_variable = {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }
    for i, item in enumerate(panels, start=1):
        item["id"] = i
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["rackconnect", "rackspace"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "schemaVersion": 39,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "tags": ["rackconnect"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "title": "RackConnect",
            }
        ],
        "templating": {"list": [datasource_variable, *variables]},
        "panels": panels,
    }


def transitions(metric: str, status: str) -> str:
    """Servers whose ``status`` series became 1 during the last interval (per account)."""
    sel = f'{metric}{{{SEL}, status=~"{status}"}}'
    return (
        f"count by (account) (\n  ({sel} == 1)\n"
        f"  and on ({SERVER}, status) (min_over_time({sel}[$__interval]) == 0)\n)"
    )


def fleet() -> Json:
    """The fleet overview: where every server stands."""
    rc = "account_region_status:rackconnect_automation_status:sum"
    mo = "account_region_status:rackconnect_managed_operations_status:sum"
    bad = [(None, "green"), (1, "red")]
    panels = [
        row("Fleet", 0),
        stat(
            "Servers",
            "Servers the exporter sees.",
            (0, 1, 4, 4),
            f"sum(account_region:rackconnect_server_info:count{{{SEL}}})",
            [(None, "blue")],
        ),
        stat(
            "Ready",
            "Servers whose RackConnect and Managed Operations automation (where the account has "
            "them) are done.",
            (4, 1, 4, 4),
            f"sum(account_region:rackconnect_server_ready:sum{{{SEL}}})",
            [(None, "green")],
        ),
        stat(
            "Not ready",
            "Servers still being automated, or whose automation failed.",
            (8, 1, 4, 4),
            f"sum(account_region:rackconnect_server_not_ready:sum{{{SEL}}})",
            [(None, "green"), (1, "yellow")],
        ),
        stat(
            "RackConnect FAILED",
            "Servers whose RackConnect automation status is FAILED.",
            (12, 1, 4, 4),
            f'sum({rc}{{{SEL}, status="FAILED"}})',
            bad,
        ),
        stat(
            "RackConnect UNPROCESSABLE",
            "Servers RackConnect cannot process, usually built in a region that does not match "
            "the RackConnect configuration.",
            (16, 1, 4, 4),
            f'sum({rc}{{{SEL}, status="UNPROCESSABLE"}})',
            [(None, "green"), (1, "orange")],
        ),
        stat(
            "Managed Operations errors",
            "Servers whose Managed Operations post-build automation reports Build Error or "
            "Authentication Error.",
            (20, 1, 4, 4),
            f'sum({mo}{{{SEL}, status=~"Build Error|Authentication Error"}})',
            bad,
        ),
        timeseries(
            "RackConnect automation status",
            "Servers by rackconnect_automation_status metadata value.",
            (0, 5, 12, 8),
            [target(f"sum by (status) ({rc}{{{SEL}}})", "{{status}}")],
            stacked=True,
            colors=RACKCONNECT_STATUS_COLORS,
        ),
        timeseries(
            "Managed Operations status",
            "Servers by rax_service_level_automation metadata value (accounts with the Managed "
            "Operations service level).",
            (12, 5, 12, 8),
            [target(f"sum by (status) ({mo}{{{SEL}}})", "{{status}}")],
            stacked=True,
            colors=MANAGED_STATUS_COLORS,
        ),
        timeseries(
            "Servers by account, region and RackConnect status",
            "One line per account, region and status.",
            (0, 13, 12, 8),
            [
                target(
                    f"sum by (account, region, status) ({rc}{{{SEL}}})",
                    "{{account}} {{region}} {{status}}",
                )
            ],
        ),
        timeseries(
            "Completions and failures",
            "Servers that reached a final state in each interval: RackConnect DEPLOYED or FAILED, "
            "Managed Operations Complete or an error.",
            (12, 13, 12, 8),
            [
                target(
                    transitions("rackconnect_automation_status", "DEPLOYED"),
                    "{{account}} RackConnect DEPLOYED",
                    "A",
                ),
                target(
                    transitions("rackconnect_automation_status", "FAILED"),
                    "{{account}} RackConnect FAILED",
                    "B",
                ),
                target(
                    transitions("rackconnect_managed_operations_status", "Complete"),
                    "{{account}} Managed Complete",
                    "C",
                ),
                target(
                    transitions(
                        "rackconnect_managed_operations_status", "Build Error|Authentication Error"
                    ),
                    "{{account}} Managed error",
                    "D",
                ),
            ],
            bars=True,
        ),
        row("Servers that need attention", 21),
        table(
            "Servers not ready",
            "Every server that is not ready, with its automation states and its age since it "
            "was created.",
            (0, 22, 24, 10),
            [
                target(
                    f"max by ({SERVER}, name) (\n  rackconnect_server_info{{{SEL}}}\n"
                    f"  and {NOT_READY}\n)",
                    ref="A",
                    table=True,
                ),
                target(
                    f"max by ({SERVER}, rackconnect_status) (\n"
                    f"  label_replace(rackconnect_automation_status{{{SEL}}} == 1, "
                    f'"rackconnect_status", "$1", "status", "(.*)")\n  and {NOT_READY}\n)',
                    ref="B",
                    table=True,
                ),
                target(
                    f"max by ({SERVER}, managed_status) (\n"
                    f"  label_replace(rackconnect_managed_operations_status{{{SEL}}} == 1, "
                    f'"managed_status", "$1", "status", "(.*)")\n  and {NOT_READY}\n)',
                    ref="C",
                    table=True,
                ),
                target(
                    f"max by ({SERVER}) (\n"
                    f"  time() - rackconnect_server_created_timestamp_seconds{{{SEL}}}\n"
                    f"  and {NOT_READY}\n)",
                    ref="D",
                    table=True,
                ),
            ],
            {
                "name": "Name",
                "account": "Account",
                "region": "Region",
                "server_id": "Server ID",
                "rackconnect_status": "RackConnect",
                "managed_status": "Managed Operations",
                "Value #D": "Age",
            },
            units={"Value #D": "dtdurations"},
            sort_by="Age",
        ),
        table(
            "Unprocessable servers",
            "Servers RackConnect reports UNPROCESSABLE, with the reason from their metadata.",
            (0, 32, 16, 7),
            [
                target(
                    f"max by ({SERVER}, name, reason) (\n"
                    f"  rackconnect_automation_unprocessable_info{{{SEL}}}\n  {NAME_JOIN}\n)",
                    table=True,
                )
            ],
            {
                "name": "Name",
                "account": "Account",
                "region": "Region",
                "server_id": "Server ID",
                "reason": "Reason",
            },
        ),
        panel(
            "bargauge",
            "RackConnect automation features",
            "Servers with each RackConnect automation feature ENABLED in their metadata.",
            (16, 32, 8, 7),
            [
                target(
                    "sum by (feature) "
                    f"(account_region_feature:rackconnect_automation_feature_enabled:sum{{{SEL}}})",
                    "{{feature}}",
                )
            ],
            options={
                "orientation": "horizontal",
                "displayMode": "basic",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "showUnfilled": True,
            },
            thresholds=[(None, "blue")],
        ),
        timeseries(
            "Not ready by account and region",
            "Servers not ready, per account and region.",
            (0, 39, 24, 8),
            [
                target(
                    f"account_region:rackconnect_server_not_ready:sum{{{SEL}}}",
                    "{{account}} {{region}}",
                )
            ],
        ),
    ]
    return dashboard(
        FLEET_UID,
        "RackConnect fleet",
        "RackConnect v2.0 and Managed Operations automation status of every cloud server.",
        panels,
        [
            variable("account", "Account", "label_values(rackconnect_server_info, account)"),
            variable(
                "region",
                "Region",
                'label_values(rackconnect_server_info{account=~"$account"}, region)',
            ),
        ],
    )


def exporter_health() -> Json:
    """The exporter's own health: scrapes, polls, upstream API calls."""
    job = 'job=~"$job"'
    panels = [
        row("Exporter", 0),
        stat(
            "Targets up",
            "Exporter targets Prometheus scrapes successfully.",
            (0, 1, 6, 4),
            f"sum(up{{{job}}})",
            [(None, "red"), (1, "green")],
        ),
        stat(
            "Regions failing",
            "Account and region pairs whose last poll failed (rackconnect_up == 0).",
            (6, 1, 6, 4),
            f"sum(1 - rackconnect_up{{{job}, {SEL}}})",
            [(None, "green"), (1, "red")],
        ),
        stat(
            "Oldest successful poll",
            "Age of the oldest last successful poll; RackConnectDataStale fires above 5 minutes.",
            (12, 1, 6, 4),
            f"max(time() - rackconnect_last_successful_poll_timestamp_seconds{{{job}, {SEL}}})",
            [(None, "green"), (120, "yellow"), (300, "red")],
            unit="s",
        ),
        table(
            "Exporter build",
            "Version of each exporter instance.",
            (18, 1, 6, 4),
            [
                target(
                    "max by (instance, version, python_version) "
                    f"(rackconnect_exporter_build_info{{{job}}})",
                    table=True,
                )
            ],
            {"instance": "Instance", "version": "Version", "python_version": "Python"},
        ),
        timeseries(
            "Target up",
            "up{job} of each exporter instance.",
            (0, 5, 12, 7),
            [target(f"up{{{job}}}", "{{instance}}")],
        ),
        table(
            "Accounts",
            "Configured accounts and what their token roles grant.",
            (12, 5, 12, 7),
            [
                target(
                    "max by (account, tenant_id, rackconnect, managed) "
                    f'(rackconnect_account_info{{{job}, account=~"$account"}})',
                    table=True,
                )
            ],
            {
                "account": "Account",
                "tenant_id": "Tenant",
                "rackconnect": "RackConnect",
                "managed": "Managed Operations",
            },
        ),
        row("Polls", 12),
        panel(
            "state-timeline",
            "Region poll status",
            "rackconnect_up per account and region: 1 when the last poll succeeded.",
            (0, 13, 24, 6),
            [target(f"rackconnect_up{{{job}, {SEL}}}", "{{account}} {{region}}")],
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
            thresholds=[(None, "red"), (1, "green")],
            custom={"fillOpacity": 80, "lineWidth": 0},
            defaults={
                "color": {"mode": "thresholds"},
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "failing", "color": "red"},
                            "1": {"text": "ok", "color": "green"},
                        },
                    }
                ],
            },
        ),
        timeseries(
            "Age of the last successful poll",
            "Seconds since each region's last successful poll finished.",
            (0, 19, 12, 8),
            [
                target(
                    f"time() - rackconnect_last_successful_poll_timestamp_seconds{{{job}, {SEL}}}",
                    "{{account}} {{region}}",
                )
            ],
            unit="s",
            thresholds=[(None, "green"), (300, "red")],
        ),
        timeseries(
            "Poll duration",
            "How long the last poll of each region took.",
            (12, 19, 12, 8),
            [
                target(
                    f"rackconnect_poll_duration_seconds{{{job}, {SEL}}}",
                    "{{account}} {{region}}",
                )
            ],
            unit="s",
        ),
        timeseries(
            "Poll errors by reason",
            "Failed polls per second, by account, region and reason.",
            (0, 27, 12, 8),
            [
                target(
                    "sum by (account, region, reason) "
                    f"(rate(rackconnect_poll_errors_total{{{job}, {SEL}}}[$__rate_interval]))",
                    "{{account}} {{region}} {{reason}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Rackspace API requests by code",
            "Upstream HTTP requests per second, by API and HTTP status code.",
            (12, 27, 12, 8),
            [
                target(
                    "sum by (api, code) "
                    f"(rate(rackconnect_api_requests_total{{{job}, {SEL}}}[$__rate_interval]))",
                    "{{api}} {{code}}",
                )
            ],
            unit="reqps",
        ),
    ]
    return dashboard(
        HEALTH_UID,
        "RackConnect exporter health",
        "Scrapes, polls and Rackspace API calls of rackconnect-exporter.",
        panels,
        [
            variable("job", "Job", "label_values(rackconnect_exporter_build_info, job)"),
            variable("account", "Account", "label_values(rackconnect_up, account)"),
            variable(
                "region", "Region", 'label_values(rackconnect_up{account=~"$account"}, region)'
            ),
        ],
    )


DASHBOARDS = {"rackconnect-fleet.json": fleet, "rackconnect-exporter-health.json": exporter_health}


def render(build: Any) -> str:
    """The JSON text of one dashboard, as committed."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with --check report files that differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for filename, build in DASHBOARDS.items():
        path = OUT_DIR / filename
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date, run python grafana/generate_dashboards.py:", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
