"""Version documents at the catalog's ``versionList`` and ``versionInfo`` URLs, as Nova
answers them (no token needed), so clients' version discovery works against the simulator."""

from __future__ import annotations

import re

from exporter.simulator.web import Reply, Request, json_reply

# /{region}/servers/ lists the versions; /{region}/servers/v2 describes one.
PATH = re.compile(r"^/([a-z]{3}|first)/servers(?:/(v2|v1\.0))?/?$")
_UPDATED = {"v2": "2011-01-21T11:33:21Z", "v1.0": "2011-01-21T11:33:21Z"}


def _version(root: str, name: str) -> dict:
    major = name.split(".", maxsplit=1)[0].lstrip("v")
    return {
        "id": "v2.0" if name == "v2" else "v1.0",
        "status": "CURRENT",
        "version": "",
        "min_version": "",
        "updated": _UPDATED[name],
        "links": [
            {"rel": "self", "href": f"{root}/{name}/"},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": [
            {
                "base": "application/json",
                "type": f"application/vnd.openstack.compute+json;version={major}",
            }
        ],
    }


def handle(req: Request, root: str, area: str, name: str | None) -> Reply:
    """The version list (``name`` None) or one version's document, for GET and HEAD."""
    if req.method not in ("GET", "HEAD"):
        return json_reply(405, {"badMethod": {"code": 405, "message": "Method Not Allowed"}})
    names = ("v1.0",) if area == "first" else ("v2",)
    if name is None:
        return json_reply(200, {"versions": [_version(root, n) for n in names]})
    if name not in names:
        return json_reply(404, {"itemNotFound": {"code": 404, "message": "Not Found"}})
    return json_reply(200, {"version": _version(root, name)})


def reply_for(req: Request, base: str) -> Reply | None:
    """The answer when ``req`` asks for a version document, else None."""
    match = PATH.match(req.path)
    if match is None:
        return None
    area = match.group(1)
    return handle(req, f"{base}/{area}/servers", area, match.group(2))
