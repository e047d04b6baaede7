"""Identity v2.0 (``POST /v2.0/tokens``) and v1.0 (``GET /v1.0``)."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING

from exporter.simulator.scenario import SimAccount
from exporter.simulator.web import Reply, Request, fault_reply, json_reply

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator

BAD_BODY = "Invalid request body: unable to parse Auth data. Please review XML or JSON formatting."
BAD_API_KEY = "Username or api key is invalid."
BAD_PASSWORD = "Unable to authenticate user with credentials provided."
APIKEY_FORM = "RAX-KSKEY:apiKeyCredentials"
PASSWORD_FORM = "passwordCredentials"


def username_of(body: bytes) -> str | None:
    """Best-effort user name from a token request, to attribute it before validation."""
    try:
        auth = json.loads(body)["auth"]
        for form in (APIKEY_FORM, PASSWORD_FORM):
            if isinstance(auth.get(form), dict):
                name = auth[form].get("username")
                return name if isinstance(name, str) else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return None


def format_expires(ts: float, style: str) -> str:
    """Token expiry as ISO 8601: ``...637Z`` now, ``...000-05:00`` in older responses."""
    millis = round(ts * 1000) % 1000
    if style == "offset":
        local = time.gmtime(ts - 5 * 3600)
        return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{millis:03d}-05:00"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{millis:03d}Z"


def tokens_v2(sim: Simulator, req: Request, variant: str | None) -> Reply:
    """Authenticate with an API key or a password; answer a token and service catalog."""
    if req.method != "POST":
        return fault_reply("identity", 405, "Method Not Allowed")
    try:
        auth = json.loads(req.body)["auth"]
        if not isinstance(auth, dict):
            raise TypeError
    except (ValueError, TypeError, KeyError):
        return fault_reply("identity", 400, BAD_BODY)
    if isinstance(auth.get(APIKEY_FORM), dict):
        form, secret_key, bad = APIKEY_FORM, "apiKey", BAD_API_KEY
    elif isinstance(auth.get(PASSWORD_FORM), dict):
        form, secret_key, bad = PASSWORD_FORM, "password", BAD_PASSWORD
    else:
        return fault_reply("identity", 400, BAD_BODY)
    creds = auth[form]
    tenant_id = auth.get("tenantId", creds.get("tenantId"))
    tenant_name = auth.get("tenantName", creds.get("tenantName"))
    if tenant_id is not None and tenant_name is not None:
        return fault_reply(
            "identity", 400, "Invalid request. Specify tenantId OR tenantName, not both."
        )
    username, secret = creds.get("username"), creds.get(secret_key)
    if not isinstance(username, str) or not username:
        return fault_reply("identity", 400, "Expecting username")
    if not isinstance(secret, str) or not secret:
        return fault_reply("identity", 400, f"Expecting {secret_key}")
    account = sim.account_by_username(username)
    expected = None
    if account is not None:
        expected = account.api_key if form == APIKEY_FORM else account.password
    if account is None or secret != expected:
        return fault_reply("identity", 401, bad)
    if account.disabled:
        message = f"User '{username}' is disabled."
        return json_reply(403, {"userDisabled": {"code": 403, "message": message}})
    scope = tenant_id if tenant_id is not None else tenant_name
    if scope is not None and str(scope) != account.tenant_id:
        return fault_reply(
            "identity",
            401,
            f"Tenant with Name/Id: '{scope}' is not valid for User '{username}' "
            f"(id: '{account.user_id}')",
        )
    token, expires = sim.issue_token(account)
    method = "APIKEY" if form == APIKEY_FORM else "PASSWORD"
    access = access_document(sim, account, req.base, token=token, expires=expires, method=method)
    if variant == "token_int":
        access["token"]["id"] = int(token[:12], 16)
    elif variant == "expires_garbage":
        access["token"]["expires"] = "next tuesday"
    elif variant is not None:
        access["serviceCatalog"] = {e["name"]: e for e in access["serviceCatalog"]}
    return json_reply(200, {"access": access})


def access_document(
    sim: Simulator, account: SimAccount, base: str, *, token: str, expires: float, method: str
) -> dict:
    """The ``access`` object: token, service catalog, user and roles."""
    tenant = account.tenant_id
    files_tenant = f"MossoCloudFS_{uuid.uuid5(uuid.NAMESPACE_URL, tenant)}"
    catalog: list[dict] = [
        {
            "name": "cloudFiles",
            "type": "object-store",
            "endpoints": [
                {
                    "region": r,
                    "tenantId": files_tenant,
                    "publicURL": f"https://storage101.{r.lower()}1.clouddrive.com/v1/{files_tenant}",
                    "internalURL": f"https://snet-storage101.{r.lower()}1.clouddrive.com/v1/"
                    f"{files_tenant}",
                }
                for r in account.regions
            ],
        },
        {
            "name": "cloudServersOpenStack",
            "type": "compute",
            "endpoints": [
                {
                    "region": r,
                    "tenantId": tenant,
                    "publicURL": f"{root}/{r.lower()}/servers/v2/{tenant}",
                    "versionInfo": f"{root}/{r.lower()}/servers/v2",
                    "versionList": f"{root}/{r.lower()}/servers/",
                    "versionId": "2",
                }
                for r, root in ((r, sim.endpoint_base(r, base)) for r in account.regions)
            ],
        },
    ]
    if account.first_gen:
        catalog.append(
            {
                "name": "cloudServers",
                "type": "compute",
                "endpoints": [
                    {
                        "tenantId": tenant,
                        "publicURL": f"{base}/first/servers/v1.0/{tenant}",
                        "versionInfo": f"{base}/first/servers/v1.0",
                        "versionList": f"{base}/first/servers/",
                        "versionId": "1.0",
                    }
                ],
            }
        )
    if account.rackconnect_v3:
        catalog.append(
            {
                "name": "rackconnect",
                "type": "rax:rackconnect",
                "endpoints": [
                    {
                        "region": r,
                        "tenantId": tenant,
                        "publicURL": f"{base}/{r.lower()}/rackconnect/v3/{tenant}",
                    }
                    for r in account.rackconnect_v3
                ],
            }
        )
    roles = [
        {
            "id": "6",
            "name": "compute:default",
            "tenantId": tenant,
            "description": "A Role that allows a user access to keystone Service methods",
        },
        {
            "id": "5",
            "name": "object-store:default",
            "tenantId": files_tenant,
            "description": "A Role that allows a user access to keystone Service methods",
        },
        {"id": "3", "name": "identity:user-admin", "description": "User Admin Role."},
    ]
    if account.rackconnect:
        roles.append({"id": "10000150", "name": "rack_connect", "description": "RackConnect"})
    if account.managed:
        roles.append({"id": "10000160", "name": "rax_managed", "description": "Managed"})
    return {
        "token": {
            "id": token,
            "expires": format_expires(expires, sim.expires_format),
            "tenant": {"id": tenant, "name": tenant},
            "RAX-AUTH:authenticatedBy": [method],
        },
        "serviceCatalog": catalog,
        "user": {
            "id": account.user_id,
            "name": account.username,
            "RAX-AUTH:defaultRegion": account.default_region,
            "RAX-AUTH:domainId": tenant,
            "roles": roles,
        },
    }


def auth_v1(sim: Simulator, req: Request, missing_token: bool) -> Reply:
    """The v1.0 handshake: credentials in headers, token and URLs in response headers."""
    if req.method not in ("GET", "HEAD"):
        return fault_reply("identity_v1", 405, "Method Not Allowed")
    user = req.header("X-Auth-User") or req.header("X-Storage-User")
    key = req.header("X-Auth-Key") or req.header("X-Storage-Pass")
    account = sim.account_by_username(user or "")
    if account is None or not key or key != account.api_key:
        return fault_reply("identity_v1", 401, "Bad username or password")
    if account.disabled:
        return fault_reply("identity_v1", 403, f"User '{user}' is disabled.")
    token, expires = sim.issue_token(account)
    headers = []
    if not missing_token:
        headers.append(("X-Auth-Token", token))
    if account.first_gen:
        headers.append(
            ("X-Server-Management-Url", f"{req.base}/first/servers/v1.0/{account.tenant_id}")
        )
    headers += [
        ("X-Tenant-Id", account.tenant_id),
        ("Cache-Control", f"s-maxage={max(0, int(expires - sim.clock()))}"),
    ]
    return Reply(204, b"", headers, None)
