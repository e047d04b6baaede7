"""The RackConnect v2.0 in-server API, under ``/rackconnect/{server_id}/v1/``.

Upstream identifies the calling server by its ServiceNet source address; here the server id
in the path stands in for it. Only the ``automation_status`` JSON key is known from real
clients; the other JSON shapes are guesses, selectable with ``rackconnect_variant``:

- ``"a"``: details ``{"automation_status": S, "tasks": [{"name": N, "status": T}]}``,
  gateway ``{"gateway_ip": IP}``, features
  ``{"automation_features": [{"name": N, "status": "ENABLED"}]}``.
- ``"b"``: details ``{"automation_status": S, "cloud_server_tasks": [{"task": N,
  "task_status": T}]}``, gateway ``{"ip": IP}``, features as a flat object
  ``{"configure_network_stack": "ENABLED", ...}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from exporter.simulator.records import Server, features_of, norm
from exporter.simulator.scenario import RC_STATUS
from exporter.simulator.web import Reply, Request, json_reply, text_reply

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator

VARIANTS = ("a", "b")
TASKS = ("configure_network_stack", "manage_software_firewall", "provision_public_ip")
_TASK_STATES = {
    "DEPLOYED": ("COMPLETED", "COMPLETED", "COMPLETED"),
    "DEPLOYING": ("COMPLETED", "IN_PROGRESS", "PENDING"),
    "FAILED": ("COMPLETED", "FAILED", "PENDING"),
    "UNPROCESSABLE": ("SKIPPED", "SKIPPED", "SKIPPED"),
}
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
_DEFAULT_FORMAT = {
    "automation_status": "text",
    "automation_status/details": "json",
    "automation_features": "json",
    "gateway_ip": "text",
}
_FORMATS = {
    "automation_status": ("text", "json", "xml"),
    "automation_status/details": ("json", "xml"),
    "automation_features": ("json", "xml"),
    "gateway_ip": ("text", "json", "xml"),
}


def status_of(server: Server) -> str:
    """The automation status the in-server API reports (DEPLOYING until automation starts)."""
    return norm(server.metadata.get(RC_STATUS)) or "DEPLOYING"


def handle(sim: Simulator, req: Request, server: Server, endpoint: str, mangle: bool) -> Reply:
    """Answer one in-server API call for ``server``."""
    if req.method not in ("GET", "HEAD"):
        return text_reply(405, "Method Not Allowed")
    if endpoint not in _FORMATS:
        return text_reply(404, "Not Found")
    fmt = (req.param("format") or _DEFAULT_FORMAT[endpoint]).lower()
    if fmt not in _FORMATS[endpoint]:
        return text_reply(400, f"Unsupported format {fmt!r}")
    variant = sim.rackconnect_variant
    with sim.fleet.lock:
        status = status_of(server)
        features = features_of(server)
        gateway = server.gateway_ip
    if endpoint == "automation_status":
        data: dict = {"automation_status": status}
        text = status
        xml = f"<automation_status>{status}</automation_status>"
    elif endpoint == "automation_status/details":
        states = _TASK_STATES.get(status, ("PENDING",) * 3)
        if variant == "b":
            tasks = [{"task": n, "task_status": t} for n, t in zip(TASKS, states, strict=True)]
            data = {"automation_status": status, "cloud_server_tasks": tasks}
        else:
            tasks = [{"name": n, "status": t} for n, t in zip(TASKS, states, strict=True)]
            data = {"automation_status": status, "tasks": tasks}
        text = status
        xml = (
            f"<automation_status_details><automation_status>{status}</automation_status><tasks>"
            + "".join(
                f"<task><name>{n}</name><status>{t}</status></task>"
                for n, t in zip(TASKS, states, strict=True)
            )
            + "</tasks></automation_status_details>"
        )
    elif endpoint == "automation_features":
        if variant == "b":
            data = dict(features)
        else:
            data = {"automation_features": [{"name": n, "status": v} for n, v in features.items()]}
        text = ""
        xml = (
            "<automation_features>"
            + "".join(
                f"<automation_feature><name>{escape(n)}</name><status>{escape(v)}</status>"
                "</automation_feature>"
                for n, v in features.items()
            )
            + "</automation_features>"
        )
    else:
        if gateway is None:
            return text_reply(404, "Not Found")
        data = {"ip": gateway} if variant == "b" else {"gateway_ip": gateway}
        text = gateway
        xml = f"<gateway_ip>{gateway}</gateway_ip>"
    if mangle:
        return json_reply(200, list(data.values()))
    if fmt == "json":
        return json_reply(200, data)
    if fmt == "xml":
        return text_reply(200, _XML_HEAD + xml, "application/xml")
    return text_reply(200, text)
