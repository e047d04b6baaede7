"""Cloud Servers: next-gen v2 (``/{region}/servers/v2/{tenant}``) and first-gen v1.0."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from exporter.simulator.fleet import MarkerNotFoundError
from exporter.simulator.records import Server
from exporter.simulator.scenario import FIRST_GEN_REGION, SimAccount
from exporter.simulator.web import Reply, Request, fault_reply, json_reply

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator

MAX_PAGE = 1000

_V2_ITEM = re.compile(r"^servers/([^/]+)(?:/metadata(?:/([^/]+))?)?$")
_V1_ITEM = re.compile(r"^servers/(\d+)(?:\.json)?$")


class BadRequestError(ValueError):
    """A query parameter the API rejects with 400."""


def parse_changes_since(value: str) -> float:
    """ISO 8601 with ``Z``, an offset, or no zone (UTC)."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequestError("Invalid changes-since value") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_limit(value: str | None) -> int | None:
    """Nova's ``limit``: a non-negative integer."""
    if value is None:
        return None
    try:
        limit = int(value)
    except ValueError:
        raise BadRequestError("limit param must be an integer") from None
    if limit < 0:
        raise BadRequestError("limit param must be positive")
    return limit


def servers_v2(
    sim: Simulator,
    req: Request,
    account: SimAccount,
    region: str,
    rest: str,
    *,
    variant: str | None,
    fault_kind: str | None = None,
) -> Reply:
    """Route a v2 request below ``/v2/{tenant}/``."""
    if req.method not in ("GET", "HEAD"):
        return fault_reply("servers", 405, "Method Not Allowed")
    if rest in ("servers/detail", "servers"):
        try:
            return _list_v2(
                sim,
                req,
                account,
                region,
                detail=rest == "servers/detail",
                variant=variant,
                fault_kind=fault_kind,
            )
        except BadRequestError as exc:
            return fault_reply("servers", 400, str(exc))
    match = _V2_ITEM.match(rest)
    if match is None:
        return fault_reply("servers", 404, "The resource could not be found.")
    server_id, key = match.group(1), match.group(2)
    is_meta = rest.count("/") >= 2
    with sim.fleet.lock:
        server = sim.fleet.find(account, region, server_id)
        if server is None:
            message = "Server does not exist" if is_meta else "Instance could not be found"
            return fault_reply("servers", 404, message)
        doc = server.v2(req.base) if not is_meta else None
        metadata = dict(server.metadata)
    if not is_meta:
        assert doc is not None
        if variant == "servers_object":
            return json_reply(200, {"server": [doc]})
        return json_reply(200, {"server": _mangle(doc, variant, 0)})
    if key is None:
        if variant is not None:
            return json_reply(200, {"metadata": [[k, v] for k, v in metadata.items()]})
        return json_reply(200, {"metadata": metadata})
    if key not in metadata:
        return fault_reply("servers", 404, "Metadata item was not found")
    return json_reply(200, {"meta": {key: metadata[key]}})


def _list_v2(
    sim: Simulator,
    req: Request,
    account: SimAccount,
    region: str,
    *,
    detail: bool,
    variant: str | None,
    fault_kind: str | None,
) -> Reply:
    limit = parse_limit(req.param("limit"))
    marker = req.param("marker") or None
    since_text = req.param("changes-since")
    since = parse_changes_since(since_text) if since_text is not None else None
    name = req.param("name")
    try:
        name_re = re.compile(name) if name else None
    except re.error:
        raise BadRequestError(f"Invalid name filter {name!r}") from None
    status = (req.param("status") or "").upper() or None
    cap = MAX_PAGE if limit is None else min(limit, MAX_PAGE)
    fleet = sim.fleet
    docs: list[dict] = []
    with fleet.lock:
        now = sim.clock()
        try:
            candidates = fleet.iter_after(account.name, region, marker)
        except MarkerNotFoundError:
            raise BadRequestError(f"marker [{marker}] not found") from None
        for s in candidates:
            if len(docs) >= cap:
                break
            if not fleet.visible(s, since, now):
                continue
            if name_re is not None and not name_re.search(s.name):
                continue
            if status is not None and s.status != status:
                continue
            docs.append(s.v2(req.base) if detail else _brief(s, req.base))
    body: dict = {"servers": docs}
    full = bool(docs) and len(docs) == cap
    if fault_kind == "loop_next" and docs:
        body["servers_links"] = [_next_link(req, account, region, detail, marker or docs[0]["id"])]
    elif full and (limit is not None or sim.next_link_without_limit):
        link = _next_link(req, account, region, detail, docs[-1]["id"])
        if fault_kind == "next_without_since":
            # Some implementations of the API drop the query from their next links.
            link["href"] = re.sub(r"changes-since=[^&]*&?", "", link["href"])
        body["servers_links"] = [link]
    if variant is not None:
        if variant == "servers_object":
            body["servers"] = {d["id"]: d for d in docs}
        else:
            body["servers"] = [_mangle(d, variant, i) for i, d in enumerate(docs)]
    return json_reply(200, body)


def _brief(s: Server, base: str) -> dict:
    root = f"{base}/{s.region.lower()}/servers"
    tenant = s.account.tenant_id
    return {
        "id": s.id,
        "name": s.name,
        "links": [
            {"href": f"{root}/v2/{tenant}/servers/{s.id}", "rel": "self"},
            {"href": f"{root}/{tenant}/servers/{s.id}", "rel": "bookmark"},
        ],
    }


def _next_link(req: Request, account: SimAccount, region: str, detail: bool, marker: str) -> dict:
    # Nova keeps every query parameter of the request and sets the marker.
    params = [(k, v) for k, v in req.query if k != "marker"] + [("marker", marker)]
    path = "servers/detail" if detail else "servers"
    href = f"{req.base}/{region.lower()}/servers/v2/{account.tenant_id}/{path}?{urlencode(params)}"
    return {"href": href, "rel": "next"}


def _mangle(doc: dict, variant: str | None, index: int) -> dict:
    """Apply a wrong-types variant to one server document."""
    if variant == "metadata_list":
        doc["metadata"] = [[k, v] for k, v in doc["metadata"].items()]
    elif variant == "id_int":
        doc["id"] = 1000 + index
    elif variant == "name_null":
        doc["name"] = None
    elif variant == "created_garbage":
        doc["created"] = "sometime last week"
        doc["updated"] = 1433520000
    return doc


def servers_v1(
    sim: Simulator, req: Request, account: SimAccount, rest: str, variant: str | None
) -> Reply:
    """Route a first-gen request below ``/v1.0/{account}/``."""
    if req.method not in ("GET", "HEAD"):
        return fault_reply("servers_v1", 405, "Method Not Allowed")
    if rest in ("servers/detail", "servers/detail.json", "servers", "servers.json"):
        try:
            return _list_v1(sim, req, account, rest.startswith("servers/detail"), variant)
        except BadRequestError as exc:
            return fault_reply("servers_v1", 400, str(exc))
    match = _V1_ITEM.match(rest)
    if match is None:
        return fault_reply("servers_v1", 404, "Not Found")
    with sim.fleet.lock:
        server = sim.fleet.find(account, FIRST_GEN_REGION, match.group(1))
        if server is None:
            return fault_reply("servers_v1", 404, "Not Found")
        doc = server.v1()
    if variant == "servers_object":
        return json_reply(200, {"server": [doc]})
    return json_reply(200, {"server": _mangle(doc, variant, 0)})


def _int_param(req: Request, name: str, default: int) -> int:
    value = req.param(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequestError(f"Invalid {name} parameter: {value!r}") from None
    if number < 0:
        raise BadRequestError(f"Invalid {name} parameter: {value!r}")
    return number


def _list_v1(
    sim: Simulator, req: Request, account: SimAccount, detail: bool, variant: str | None
) -> Reply:
    limit = min(_int_param(req, "limit", MAX_PAGE), MAX_PAGE)
    offset = _int_param(req, "offset", 0)
    since_text = req.param("changes-since")
    since: float | None = None
    if since_text is not None:
        try:
            since = float(since_text)
        except ValueError:
            raise BadRequestError(f"Invalid changes-since parameter: {since_text!r}") from None
    fleet = sim.fleet
    with fleet.lock:
        now = sim.clock()
        items = [
            s
            for s in fleet.iter_after(account.name, FIRST_GEN_REGION, None)
            if fleet.visible(s, since, now)
        ]
        if since is not None and not items:
            return Reply(304, b"", [], None)
        page = items[offset : offset + limit]
        docs = [s.v1() if detail else {"id": int(s.id), "name": s.name} for s in page]
    if variant == "servers_object":
        return json_reply(200, {"servers": {str(d["id"]): d for d in docs}})
    if variant is not None:
        docs = [_mangle(d, variant, i) for i, d in enumerate(docs)]
    return json_reply(200, {"servers": docs})
