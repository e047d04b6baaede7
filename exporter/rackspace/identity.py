"""Rackspace Identity: authenticate (v2.0 or v1.0), cache the token, read roles and catalog.

``Identity`` speaks v2.0 (``POST /tokens``), ``IdentityV1`` the v1.0 handshake (``GET /v1.0``
with ``X-Auth-User``/``X-Auth-Key``). Both only authenticate; a ``TokenCache`` keeps the
token of either and is what the rest of the exporter holds. ``make_token_cache`` picks the
version from an account's ``identity_url``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cachetools import TLRUCache

from exporter.config import REGIONS, AccountConfig, is_identity_v1
from exporter.errors import AUTH, BAD_RESPONSE, HTTP_ERROR, RATE_LIMITED, UpstreamError
from exporter.model import (
    FIRST_GEN_REGION,
    parse_timestamp,
    rackconnect_v2_regions,
)
from exporter.model_v3 import rackconnect_v3_regions
from exporter.rackspace import rackconnect_v3
from exporter.rackspace.client import (
    RATE_LIMIT_STATUSES,
    ApiClient,
    check_status,
    decode_json,
    parse_retry_after,
    strip_query,
)

NEXT_GEN_SERVICE = "cloudServersOpenStack"
FIRST_GEN_SERVICE = "cloudServers"
RACKCONNECT_ROLE = "rack_connect"
MANAGED_ROLE = "rax_managed"

# Refresh a token this long before it expires (or at 90% of a short lifetime).
REFRESH_MARGIN = 300.0
# v1.0: "Authentication tokens are typically valid for 24 hours"; used without s-maxage.
DEFAULT_LIFETIME = 86400.0
_S_MAXAGE = re.compile(r"s-maxage\s*=\s*(\d+)", re.IGNORECASE)

Clock = Callable[[], float]


@dataclass(frozen=True)
class Access:
    """A token and what came with it."""

    token: str = field(repr=False)
    expires: float
    tenant_id: str
    roles: frozenset[str]
    # service name -> region ("" for global endpoints) -> publicURL
    endpoints: dict[str, dict[str, str]]
    # region -> publicURL of the RackConnect v3.0 API (the rax:rackconnect entry)
    rackconnect_v3: dict[str, str] = field(default_factory=dict)

    def refresh_at(self, now: float) -> float:
        """When to fetch a new token."""
        return self.expires - min(REFRESH_MARGIN, max(0.0, self.expires - now) * 0.1)

    def region_urls(self, service: str = NEXT_GEN_SERVICE) -> dict[str, str]:
        """``{region: publicURL}`` for one service of the catalog."""
        return dict(self.endpoints.get(service, {}))

    def v3_regions(self, account: AccountConfig) -> tuple[str, ...]:
        """The account's RackConnect v3.0 regions: ``rackconnect_v3:``, or the catalog's."""
        return rackconnect_v3_regions(account.rackconnect_v3, self.rackconnect_v3)

    def v2_regions(self, account: AccountConfig) -> tuple[str, ...] | None:
        """Where RackConnect v2.0 metadata is expected (None: every region): not in a v3.0
        region unless ``rackconnect:`` says so."""
        every = sorted({*REGIONS, *self.region_urls(NEXT_GEN_SERVICE), FIRST_GEN_REGION})
        return rackconnect_v2_regions(
            account.rackconnect, account.rackconnect_regions, self.v3_regions(account), every
        )


class Authenticator(Protocol):
    """What fetches a new token: Identity v2.0 or v1.0."""

    def authenticate(self, now: float) -> Access:
        """A fresh token; ``now`` is the epoch time of the request (the cache's clock)."""
        ...


class _HasStatus(Protocol):
    @property
    def status_code(self) -> int: ...


Answered = TypeVar("Answered", bound=_HasStatus)  # a response, or an Answer


class TokenCache:
    """Keeps one account's token until shortly before it expires; one fetch at a time.

    ``clock`` gives epoch seconds: token expiry times are wall-clock times from Identity.
    """

    def __init__(self, identity: Authenticator, clock: Clock = time.time) -> None:
        self.identity = identity
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: TLRUCache[str, Access] = TLRUCache(
            maxsize=1,
            ttu=lambda _key, access, now: access.refresh_at(now),
            timer=self._now,
        )

    def _now(self) -> float:
        return self.clock()  # read on each call, so a test may swap ``clock``

    def access(self) -> Access:
        """A valid token, from the cache or fresh from Identity."""
        with self._lock:
            access = self._cache.get("access")
            if access is None:
                access = self.identity.authenticate(self.clock())
                self._cache["access"] = access
            return access

    def invalidate(self, access: Access) -> None:
        """Forget ``access`` (after a 401) unless a newer token already replaced it."""
        with self._lock:
            if self._cache.get("access") is access:
                del self._cache["access"]

    def send(self, request: Callable[[str], Answered]) -> Answered:
        """``request(token)``; on 401 (token expired or revoked) authenticate again, once."""
        access = self.access()
        response = request(access.token)
        if response.status_code == 401:
            self.invalidate(access)
            response = request(self.access().token)
        return response


class Identity:
    """Authenticates one account against Identity v2.0."""

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

    def authenticate(self, now: float) -> Access:
        """POST the credentials to ``/tokens``; a 4xx answer (but 413/429) is an auth error."""
        response = self._client.request(
            "POST",
            self.tokens_url,
            api="identity",
            region="",
            headers={"Content-Type": "application/json"},
            json_body={"auth": self._credentials()},
        )
        try:
            check_status(response, "POST", self.tokens_url, lambda: now)
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
        rackconnect_v3=rackconnect_v3.endpoints(catalog),
    )


class IdentityV1:
    """Authenticates one account against Identity v1.0.

    The answer has headers only: the token and the first-generation Cloud Servers URL,
    no regions and no roles, so it serves first-generation servers only. The account is
    assumed to have RackConnect (set ``rackconnect: false`` in the configuration to say
    otherwise) and no Managed Operations, which first-generation servers never report.
    """

    def __init__(self, client: ApiClient, url: str, username: str, api_key: str) -> None:
        if not api_key:
            raise ValueError("Identity v1.0 needs an API key")
        self._client = client
        self.url = url.rstrip("/")
        self._username = username
        self._api_key = api_key

    def authenticate(self, now: float) -> Access:
        """GET the v1.0 URL with the credentials as headers; the token comes back as one."""
        response = self._client.request(
            "GET",
            self.url,
            api="identity",
            region="",
            headers={"X-Auth-User": self._username, "X-Auth-Key": self._api_key},
        )
        code = response.status_code
        where = f"GET {strip_query(self.url)}: HTTP {code}"
        # Identity v1.0 answers 204; some versions answer 200. Failures are plain text.
        if code in RATE_LIMIT_STATUSES:
            raise UpstreamError(
                RATE_LIMITED, where, code, parse_retry_after(response.headers, clock=lambda: now)
            )
        if 400 <= code < 500:
            raise UpstreamError(AUTH, where, code)
        if code not in (200, 204):
            raise UpstreamError(HTTP_ERROR, where, code)
        token = response.headers.get("X-Auth-Token", "").strip()
        servers_url = response.headers.get("X-Server-Management-Url", "").strip()
        if not token:
            raise UpstreamError(BAD_RESPONSE, f"{where}: no X-Auth-Token header", code)
        lifetime = DEFAULT_LIFETIME
        match = _S_MAXAGE.search(response.headers.get("Cache-Control", ""))
        if match:
            lifetime = float(match.group(1))
        endpoints = {FIRST_GEN_SERVICE: {"": servers_url.rstrip("/")}} if servers_url else {}
        return Access(
            token=token,
            expires=now + lifetime,
            tenant_id=response.headers.get("X-Tenant-Id", "").strip()
            or servers_url.rstrip("/").rsplit("/", 1)[-1],
            roles=frozenset({RACKCONNECT_ROLE}),
            endpoints=endpoints,
        )


def automation(account: AccountConfig, access: Access) -> tuple[bool, bool]:
    """Whether the account has RackConnect and Managed Operations: the config's word, else
    the token's roles."""
    rackconnect = account.rackconnect
    if rackconnect is None:
        rackconnect = RACKCONNECT_ROLE in access.roles
    managed = account.managed
    if managed is None:
        managed = MANAGED_ROLE in access.roles
    return rackconnect, managed


def make_token_cache(
    client: ApiClient, account: AccountConfig, clock: Clock = time.time
) -> TokenCache:
    """The account's token cache, over Identity v1.0 if ``identity_url`` ends in /v1.0."""
    identity: Authenticator
    if is_identity_v1(account.identity_url):
        identity = IdentityV1(client, account.identity_url, account.username, account.api_key or "")
    else:
        identity = Identity(
            client,
            account.identity_url,
            account.username,
            api_key=account.api_key,
            password=account.password,
        )
    return TokenCache(identity, clock)
