"""The HTML landing page: links, the fleet by status and region, and what is not ready.

Every link is relative, so the page works behind a proxy that serves it under a path prefix.
A region whose last poll failed is shown as stale: greyed, with the age of its data.
"""

from __future__ import annotations

import time
from collections import Counter
from html import escape

from exporter import __version__, revision
from exporter.model import AUTOMATION_STATUSES, MANAGED_STATUSES, RegionView, Server
from exporter.rackconnect_v3_state import V3State
from exporter.store import Snapshot

NOT_READY_ROWS = 200  # the table stops here and says how many more there are
NO_KEY = "no key"
# A v3.0 region's servers by their public IPs and pool memberships: all ACTIVE, some still
# on their way, one failed, or none at all.
V3_COLUMNS = ["wired", "pending", "failed", "none"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1d1d1f;max-width:72em}
h1{font-size:1.5em;margin-bottom:0}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccd;padding:.25em .6em;text-align:left}
th{background:#eef}
.n{text-align:right}
#status{font-size:.75em}
#status th,#status td{padding:.2em .4em}
.bad{color:#b00020;font-weight:600}
.down,tr.failed td{color:#b00020}
tr.stale td{color:#8a8a8f;background:#f6f6f8}
tr.stale td.down{color:#b00020}
tr.stale .bad,tr.failed.stale td{color:#c98a94}
small{font-weight:normal;white-space:nowrap}
"""


def _h(value: object) -> str:
    return escape(str(value), quote=True)


def _age(since: float | None, now: float) -> str:
    if since is None:
        return ""
    seconds = max(0, int(now - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def _stale_note(region: RegionView, now: float) -> str:
    """What a down region's data is worth, for its row in the status table."""
    if region.last_success is None:
        return "no data"
    return f"stale, {_age(region.last_success, now)} old"


def _stale_title(region: RegionView) -> str:
    """A title attribute with the time of the region's last successful poll."""
    if region.last_success is None:
        return " title='never polled successfully'"
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(region.last_success))
    return f" title='last successful poll {when}'"


def render_landing(snapshot: Snapshot, telemetry_path: str) -> bytes:
    """The landing page for one snapshot."""
    now = time.time()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>RackConnect Exporter</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>RackConnect Exporter</h1>",
        f"<p>Version {_h(__version__)}, revision {_h(revision())}. RackConnect v2.0 and"
        " Managed Operations automation status of Rackspace cloud servers, and their"
        " RackConnect v3.0 public IPs and load balancer pool memberships.</p>",
        f"<p><a href='{_h(_relative(telemetry_path))}'>Metrics</a> · "
        "<a href='./-/healthy'>Health</a> · <a href='./-/ready'>Readiness</a></p>",
    ]
    parts.append(_accounts_table(snapshot, now))
    parts.append(_status_table(snapshot, now))
    parts.append(_not_ready_table(snapshot, now))
    parts.append("</body></html>")
    return "".join(parts).encode("utf-8", "replace")


def _relative(path: str) -> str:
    """``path`` (from the root) relative to the landing page, which the exporter serves at /."""
    return "./" + path.lstrip("/")


def _accounts_table(snapshot: Snapshot, now: float) -> str:
    rows = []
    for account in snapshot.accounts:
        for region in account.regions or ():
            state = "up" if region.up else f"down ({region.last_error})"
            if region.v3_up is not None:
                state += "; RackConnect v3.0 " + ("up" if region.v3_up else "down")
            last = f"{_age(region.last_success, now)} ago" if region.last_success else "never"
            stale = "" if region.up else " class='stale'" + _stale_title(region)
            rows.append(
                f"<tr{stale}><td>{_h(account.name)}</td><td>{_h(account.tenant_id)}</td>"
                f"<td>{_h(region.region or '(none)')}</td>"
                f"<td class='{'' if region.up and region.v3_up is not False else 'down'}'>"
                f"{_h(state)}</td>"
                f"<td>{_h(last)}</td><td class='n'>{len(region.servers)}</td></tr>"
            )
        if not account.regions:
            rows.append(
                f"<tr><td>{_h(account.name)}</td><td></td><td></td>"
                f"<td>{'polled' if account.polled else 'first poll running'}</td><td></td>"
                "<td class='n'>0</td></tr>"
            )
    return (
        "<h2>Accounts</h2><table id='accounts'><tr><th>Account</th><th>Tenant</th>"
        "<th>Region</th><th>Poll</th><th>Last success</th><th>Servers</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _v3_column(server: Server) -> str:
    if not server.public_ips and not server.pool_nodes:
        return "none"
    if server.v3_failure() is not None:
        return "failed"
    return "wired" if server.v3_done() else "pending"


def _status_table(snapshot: Snapshot, now: float) -> str:
    rc_columns = [*AUTOMATION_STATUSES, NO_KEY]
    mo_columns = [*MANAGED_STATUSES, NO_KEY]
    any_v3 = any(a.has_rackconnect_v3(r.region) for a in snapshot.accounts for r in a.regions)
    v3_columns = V3_COLUMNS if any_v3 else []
    rows = []
    stale_rows = 0
    totals: Counter[str] = Counter()
    for account in snapshot.accounts:
        for region in account.regions:
            if not region.region:
                continue
            counts: Counter[str] = Counter()
            expected = account.expects_rackconnect(region.region)
            v3 = account.has_rackconnect_v3(region.region)
            for server in region.servers:
                counts["rc:" + (server.automation_status or NO_KEY)] += 1
                counts["mo:" + (server.managed_status or NO_KEY)] += 1
                counts["ready"] += server.ready(expected, account.managed, v3)
                if v3:
                    counts["v3:" + _v3_column(server)] += 1
            totals.update(counts)
            totals["servers"] += len(region.servers)
            name = _h(region.region)
            stale = ""
            if not region.up:
                stale_rows += 1
                stale = " class='stale'" + _stale_title(region)
                name += f" <small>({_h(_stale_note(region, now))})</small>"
            rows.append(
                f"<tr{stale}><td>{_h(account.name)}</td><td>{name}</td>"
                f"<td class='n'>{len(region.servers)}</td><td class='n'>{counts['ready']}</td>"
                + "".join(_count_cell(counts["rc:" + c], c) for c in rc_columns)
                + "".join(_count_cell(counts["mo:" + c], c) for c in mo_columns)
                + "".join(
                    _count_cell(counts["v3:" + c], c) if v3 else "<td></td>" for c in v3_columns
                )
                + "</tr>"
            )
    header = (
        "<tr><th rowspan='2'>Account</th><th rowspan='2'>Region</th><th rowspan='2'>Servers</th>"
        f"<th rowspan='2'>Ready</th><th colspan='{len(rc_columns)}'>RackConnect automation</th>"
        f"<th colspan='{len(mo_columns)}'>Managed Operations</th>"
        + (f"<th colspan='{len(v3_columns)}'>RackConnect v3.0</th>" if v3_columns else "")
        + "</tr><tr>"
        + "".join(f"<th>{_h(c)}</th>" for c in rc_columns + mo_columns + v3_columns)
        + "</tr>"
    )
    total_row = (
        f"<tr><th colspan='2'>Total</th><th class='n'>{totals['servers']}</th>"
        f"<th class='n'>{totals['ready']}</th>"
        + "".join(_count_cell(totals["rc:" + c], c, "th") for c in rc_columns)
        + "".join(_count_cell(totals["mo:" + c], c, "th") for c in mo_columns)
        + "".join(_count_cell(totals["v3:" + c], c, "th") for c in v3_columns)
        + "</tr>"
    )
    note = (
        "<p>Grey rows: the region's last poll failed; their counts are from its last"
        " successful poll.</p>"
        if stale_rows
        else ""
    )
    return (
        "<h2>Servers by status</h2><table id='status'>"
        + header
        + "".join(rows)
        + total_row
        + "</table>"
        + note
    )


def _count_cell(count: int, status: str, tag: str = "td") -> str:
    bad = status in ("FAILED", "UNPROCESSABLE", "Build Error", "Authentication Error", "failed")
    css = "n bad" if bad and count else "n"
    return f"<{tag} class='{css}'>{count}</{tag}>"


def _reason(server: Server, v3: bool) -> str:
    """The UNPROCESSABLE reason, or the failed (else pending) RackConnect v3.0 resource."""
    if server.unprocessable_reason or not v3:
        return server.unprocessable_reason or ""
    return V3State.of_server(server).reason() or ""


def _not_ready_table(snapshot: Snapshot, now: float) -> str:
    rows = []
    for account in snapshot.accounts:
        for region in account.regions:
            expected = account.expects_rackconnect(region.region)
            v3 = account.has_rackconnect_v3(region.region)
            for server in region.servers:
                if not server.ready(expected, account.managed, v3):
                    rows.append((not server.failed(expected), account.name, region, server, v3))
    rows.sort(key=lambda r: (r[0], r[1], r[2].region, r[3].name, r[3].id))
    body = "".join(
        f"<tr class='{'' if ok else 'failed'}{'' if region.up else ' stale'}'>"
        f"<td>{_h(account)}</td><td>{_h(region.region)}</td>"
        f"<td>{_h(server.name)}</td><td><code>{_h(server.id)}</code></td>"
        f"<td>{_h(server.status or NO_KEY)}</td>"
        f"<td>{_h(server.automation_status or NO_KEY)}</td>"
        f"<td>{_h(server.managed_status or NO_KEY)}</td>"
        f"<td>{_h(_reason(server, v3))}</td>"
        f"<td>{_h(_age(server.created, now))}</td></tr>"
        for ok, account, region, server, v3 in rows[:NOT_READY_ROWS]
    )
    more = len(rows) - NOT_READY_ROWS
    tail = f"<p>… and {more} more.</p>" if more > 0 else ""
    return (
        f"<h2>Not ready ({len(rows)})</h2><table id='not-ready'><tr><th>Account</th>"
        "<th>Region</th><th>Name</th><th>Server ID</th><th>Status</th><th>RackConnect</th>"
        "<th>Managed Operations</th><th>Reason</th><th>Age</th></tr>" + body + "</table>" + tail
    )
