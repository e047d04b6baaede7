"""The control API under ``/_control/``: JSON in and out, mirroring the Python methods.

Routes::

    GET    /_control/accounts
    GET    /_control/servers?account=&region=&include_deleted=
    POST   /_control/servers                 {account, region, name?, metadata?, generation?,
                                              status?, appear_after?} -> {"id"}
    POST   /_control/servers/{id}/metadata   {"metadata": {...}, "replace": false}
    POST   /_control/servers/{id}/status     {"status": "ERROR"}
    POST   /_control/servers/{id}/transitions {"after": seconds, "status"?, "metadata"?}
    DELETE /_control/servers/{id}
    GET    /_control/faults
    POST   /_control/faults                  Fault fields -> {"id"}
    DELETE /_control/faults
    DELETE /_control/faults/{id}
    GET    /_control/endpoints
    PUT    /_control/endpoints/{region}      {"url": "http://127.0.0.1:9" or null}
    GET    /_control/rackconnect_v3?account=&region=      -> {"pools": [...], "resources": [...]}
    POST   /_control/rackconnect_v3/public_ips  {server_id, after?, outcome?, detail?} -> {"id"}
    POST   /_control/rackconnect_v3/pool_nodes  {server_id, pool_id, after?, outcome?,
                                                 detail?} -> {"id"}
    POST   /_control/rackconnect_v3/{id}/status {"status": " active ", "detail"?}
    DELETE /_control/rackconnect_v3/{id}        {after?, fail?}
    POST   /_control/revoke                  {"account"?}
    POST   /_control/step                    {"count"?} -> {"steps"}
    GET    /_control/settings
    PUT    /_control/settings                {token_lifetime?, expires_format?,
                                              rackconnect_variant?, rate_limit_per_minute?,
                                              next_link_without_limit?}

A server created or whose metadata is set through this API is never deleted by the
simulated churn (only by DELETE), so a forced state stays for its alert to fire.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from exporter.simulator.faults import Fault
from exporter.simulator.web import Reply, Request, json_reply

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator

_SETTINGS = (
    "token_lifetime",
    "expires_format",
    "rackconnect_variant",
    "rate_limit_per_minute",
    "next_link_without_limit",
)


class _BadInputError(ValueError):
    """A control request with bad input."""


def _error(status: int, message: str) -> Reply:
    return json_reply(status, {"error": message})


def _body(req: Request) -> dict:
    if not req.body.strip():
        return {}
    try:
        data = json.loads(req.body)
    except ValueError:
        raise _BadInputError("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _BadInputError("request body must be a JSON object")
    return data


def _only(data: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _BadInputError(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )


def handle(sim: Simulator, req: Request, route: str) -> Reply:
    """Answer one control request; bad input gets 400 with a message."""
    try:
        return _route(sim, req, route.split("/"))
    except _BadInputError as exc:
        return _error(400, str(exc))
    except KeyError as exc:
        return _error(404, str(exc.args[0]) if exc.args else "not found")
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))


def _route(sim: Simulator, req: Request, parts: list[str]) -> Reply:
    method = req.method
    head = parts[0]
    if parts == ["accounts"] and method == "GET":
        accounts = [{**dataclasses.asdict(a), "regions": list(a.regions)} for a in sim.accounts]
        return json_reply(200, {"accounts": accounts})
    if head == "servers":
        return _servers(sim, req, parts[1:])
    if head == "faults":
        return _faults(sim, req, parts[1:])
    if head == "rackconnect_v3":
        return _rackconnect_v3(sim, req, parts[1:])
    if parts == ["endpoints"] and method == "GET":
        return json_reply(200, {"endpoints": sim.endpoints()})
    if len(parts) == 2 and head == "endpoints" and method == "PUT":
        data = _body(req)
        _only(data, ("url",))
        sim.override_endpoint(parts[1], data.get("url"))
        return json_reply(200, {"endpoints": sim.endpoints()})
    if parts == ["revoke"] and method == "POST":
        data = _body(req)
        _only(data, ("account",))
        account = data.get("account")
        if account is not None and account not in {a.name for a in sim.accounts}:
            raise _BadInputError(f"unknown account {account!r}")
        sim.revoke_tokens(account)
        return json_reply(200, {"revoked": account or "all"})
    if parts == ["step"] and method == "POST":
        data = _body(req)
        _only(data, ("count",))
        count = data.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10000:
            raise _BadInputError("count must be an integer from 1 to 10000")
        for _ in range(count):
            sim.step()
        return json_reply(200, {"steps": sim.fleet.steps})
    if parts == ["settings"] and method == "GET":
        return json_reply(200, sim.settings())
    if parts == ["settings"] and method == "PUT":
        data = _body(req)
        _only(data, _SETTINGS)
        if "next_link_without_limit" in data and not isinstance(
            data["next_link_without_limit"], bool
        ):
            raise _BadInputError("next_link_without_limit must be true or false")
        current = sim.settings()
        try:
            for key, value in data.items():
                setattr(sim, key, value)
        except ValueError:
            for key, value in current.items():
                setattr(sim, key, value)
            raise
        return json_reply(200, sim.settings())
    return _error(
        404 if method in ("GET", "POST", "PUT", "DELETE") else 405,
        f"no control route {method} /_control/{'/'.join(parts)}",
    )


def _servers(sim: Simulator, req: Request, rest: list[str]) -> Reply:
    method = req.method
    if not rest and method == "GET":
        include = (req.param("include_deleted") or "").lower() in ("1", "true", "yes")
        account = req.param("account") or None
        if account is not None and account not in {a.name for a in sim.accounts}:
            raise _BadInputError(f"unknown account {account!r}")
        return json_reply(
            200, {"servers": sim.servers(account, req.param("region") or None, include)}
        )
    if not rest and method == "POST":
        data = _body(req)
        _only(
            data, ("account", "region", "name", "metadata", "generation", "status", "appear_after")
        )
        for key in ("account", "region"):
            if not isinstance(data.get(key), str):
                raise _BadInputError(f"'{key}' is required and must be a string")
        try:
            sid = sim.add_server(
                data["account"],
                data["region"],
                name=data.get("name"),
                metadata=data.get("metadata"),
                generation=data.get("generation", "next"),
                status=data.get("status", "ACTIVE"),
                appear_after=data.get("appear_after"),
            )
        except KeyError as exc:
            raise _BadInputError(str(exc.args[0])) from None
        return json_reply(200, {"id": sid})
    if len(rest) == 2 and rest[1] == "metadata" and method == "POST":
        data = _body(req)
        _only(data, ("metadata", "replace"))
        if not isinstance(data.get("metadata"), dict):
            raise _BadInputError("'metadata' is required and must be an object")
        replace = data.get("replace", False)
        if not isinstance(replace, bool):
            raise _BadInputError("'replace' must be true or false")
        sim.set_metadata(rest[0], data["metadata"], replace=replace)
        return json_reply(200, {"id": rest[0]})
    if len(rest) == 2 and rest[1] == "status" and method == "POST":
        data = _body(req)
        _only(data, ("status",))
        if not isinstance(data.get("status"), str):
            raise _BadInputError("'status' is required and must be a string")
        sim.set_status(rest[0], data["status"])
        return json_reply(200, {"id": rest[0]})
    if len(rest) == 2 and rest[1] == "transitions" and method == "POST":
        data = _body(req)
        _only(data, ("after", "status", "metadata"))
        if "after" not in data:
            raise _BadInputError("'after' is required (seconds from now)")
        sim.schedule(
            rest[0], data["after"], status=data.get("status"), metadata=data.get("metadata")
        )
        return json_reply(200, {"id": rest[0]})
    if len(rest) == 1 and method == "DELETE":
        sim.delete_server(rest[0])
        return json_reply(200, {"id": rest[0], "status": "DELETED"})
    return _error(404, f"no control route {method} /_control/servers/{'/'.join(rest)}")


def _faults(sim: Simulator, req: Request, rest: list[str]) -> Reply:
    method = req.method
    if not rest and method == "GET":
        return json_reply(200, {"faults": sim.faults()})
    if not rest and method == "POST":
        fid = sim.add_fault(Fault.from_dict(_body(req)))
        return json_reply(200, {"id": fid})
    if not rest and method == "DELETE":
        sim.clear_faults()
        return json_reply(200, {"cleared": True})
    if len(rest) == 1 and method == "DELETE":
        try:
            sim.remove_fault(rest[0])
        except KeyError:
            raise KeyError(f"no fault {rest[0]!r}") from None
        return json_reply(200, {"id": rest[0]})
    return _error(404, f"no control route {method} /_control/faults/{'/'.join(rest)}")


def _rackconnect_v3(sim: Simulator, req: Request, rest: list[str]) -> Reply:
    method = req.method
    if not rest and method == "GET":
        return json_reply(
            200, sim.rackconnect_v3(req.param("account") or None, req.param("region") or None)
        )
    if rest in (["public_ips"], ["pool_nodes"]) and method == "POST":
        data = _body(req)
        nodes = rest == ["pool_nodes"]
        _only(data, ("server_id", "after", "outcome", "detail") + (("pool_id",) if nodes else ()))
        for key in ("server_id", "pool_id") if nodes else ("server_id",):
            if not isinstance(data.get(key), str):
                raise _BadInputError(f"'{key}' is required and must be a string")
        timing = {k: data[k] for k in ("after", "outcome", "detail") if k in data}
        if nodes:
            rid = sim.add_pool_node(data["server_id"], data["pool_id"], **timing)
        else:
            rid = sim.add_public_ip(data["server_id"], **timing)
        return json_reply(200, {"id": rid})
    if len(rest) == 2 and rest[1] == "status" and method == "POST":
        data = _body(req)
        _only(data, ("status", "detail"))
        if not isinstance(data.get("status"), str):
            raise _BadInputError("'status' is required and must be a string")
        sim.set_v3_status(rest[0], data["status"], data.get("detail"))
        return json_reply(200, {"id": rest[0]})
    if len(rest) == 1 and method == "DELETE":
        data = _body(req)
        _only(data, ("after", "fail"))
        if not isinstance(data.get("fail", False), bool):
            raise _BadInputError("'fail' must be true or false")
        sim.remove_v3(rest[0], **{k: data[k] for k in ("after", "fail") if k in data})
        return json_reply(200, {"id": rest[0]})
    return _error(404, f"no control route {method} /_control/rackconnect_v3/{'/'.join(rest)}")
