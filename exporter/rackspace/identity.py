"""Rackspace Identity v2.0: authenticate, cache the token, read roles and the catalog."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from cachetools import TLRUCache

from exporter.errors import AUTH, BAD_RESPONSE, RATE_LIMITED, UpstreamError
from exporter.model import parse_timestamp
from exporter.rackspace.client import ApiClient, check_status, decode_json

NEXT_GEN_SERVICE = "cloudServersOpenStack"
FIRST_GEN_SERVICE = "cloudServers"
RACKCONNECT_ROLE = "rack_connect"
MANAGED_ROLE = "rax_managed"

# Refresh a token this long before it expires (or at 90% of a short lifetime).
REFRESH_MARGIN = 300.0


@dataclass(frozen=True)
class Access:
    """A token and what came with it."""

    token: str = field(repr=False)
    expires: float
    tenant_id: str
    roles: frozenset[str]
    # service name -> region ("" for global endpoints) -> publicURL
    endpoints: dict[str, dict[str, str]]

    def refresh_at(self, now: float) -> float:
        """When to fetch a new token."""
        return self.expires - min(REFRESH_MARGIN, max(0.0, self.expires - now) * 0.1)

    def region_urls(self, service: str = NEXT_GEN_SERVICE) -> dict[str, str]:
        """``{region: publicURL}`` for one service of the catalog."""
        return dict(self.endpoints.get(service, {}))


class TokenCache:
    """Keeps one account's token until shortly before it expires; one fetch at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: TLRUCache[str, Access] = TLRUCache(
            maxsize=1, ttu=lambda _key, access, now: access.refresh_at(now), timer=time.time
        )

    def access(self) -> Access:
        """A valid token, from the cache or fresh from Identity."""
        with self._lock:
            access = self._cache.get("access")
            if access is None:
                access = self._authenticate()
                self._cache["access"] = access
            return access

    def invalidate(self, access: Access) -> None:
        """Forget ``access`` (after a 401) unless a newer token already replaced it."""
        with self._lock:
            if self._cache.get("access") is access:
                del self._cache["access"]

    def _authenticate(self) -> Access:
        raise NotImplementedError


class Identity(TokenCache):
    """Authenticates one account against Identity v2.0 and caches its token."""

    def __init__(
        self,
        client: ApiClient,
        url: str,
        username: str,
        *,
        api_key: str | None = None,
        password: str | None = None,
    ) -> None:
        if not api_key and not password:
            raise ValueError("an API key or a password is required")
        super().__init__()
        self._client = client
        self.tokens_url = url.rstrip("/") + "/tokens"
        self._username = username
        self._api_key = api_key
        self._password = password

    def _credentials(self) -> dict[str, object]:
        if self._api_key:
            return {
                "RAX-KSKEY:apiKeyCredentials": {
                    "username": self._username,
                    "apiKey": self._api_key,
                }
            }
        return {"passwordCredentials": {"username": self._username, "password": self._password}}

    def _authenticate(self) -> Access:
        response = self._client.request(
            "POST",
            self.tokens_url,
            api="identity",
            region="",
            headers={"Content-Type": "application/json"},
            json_body={"auth": self._credentials()},
        )
        try:
            check_status(response, "POST", self.tokens_url)
        except UpstreamError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.reason != RATE_LIMITED:
                exc.reason = AUTH
            raise
        return parse_access(decode_json(response, "POST", self.tokens_url), self.tokens_url)


def parse_access(doc: object, url: str = "identity") -> Access:
    """Read an Identity v2.0 ``access`` document; raise bad_response if it is unusable."""

    def bad(what: str) -> UpstreamError:
        return UpstreamError(BAD_RESPONSE, f"POST {url}: {what}")

    access = doc.get("access") if isinstance(doc, dict) else None
    if not isinstance(access, dict):
        raise bad("no access object")
    token = access.get("token")
    if not isinstance(token, dict) or not isinstance(token.get("id"), str) or not token["id"]:
        raise bad("no token id")
    expires = parse_timestamp(token.get("expires"))
    if expires is None:
        raise bad("token without a readable expires time")
    tenant = token.get("tenant")
    tenant_id = tenant.get("id") if isinstance(tenant, dict) else None
    user = access.get("user")
    roles_doc = user.get("roles") if isinstance(user, dict) else None
    roles = frozenset(
        role["name"]
        for role in (roles_doc if isinstance(roles_doc, list) else [])
        if isinstance(role, dict) and isinstance(role.get("name"), str)
    )
    endpoints: dict[str, dict[str, str]] = {}
    catalog = access.get("serviceCatalog")
    if not isinstance(catalog, list):
        raise bad("no serviceCatalog list")
    for service in catalog:
        if not isinstance(service, dict) or not isinstance(service.get("name"), str):
            continue
        by_region = endpoints.setdefault(service["name"], {})
        for endpoint in service.get("endpoints") or []:
            if not isinstance(endpoint, dict) or not isinstance(endpoint.get("publicURL"), str):
                continue
            region = endpoint.get("region")
            # Global endpoints (first-generation servers) carry no region key.
            key = region.upper() if isinstance(region, str) else ""
            by_region.setdefault(key, endpoint["publicURL"].rstrip("/"))
            if (
                tenant_id is None
                and service["name"] == NEXT_GEN_SERVICE
                and isinstance(endpoint.get("tenantId"), str)
            ):
                tenant_id = endpoint["tenantId"]
    return Access(
        token=token["id"],
        expires=expires,
        tenant_id=str(tenant_id) if tenant_id is not None else "",
        roles=roles,
        endpoints=endpoints,
    )
