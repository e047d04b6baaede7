"""Rackspace Identity v1.0 (``GET /v1.0`` with ``X-Auth-User``/``X-Auth-Key``).

The v1.0 handshake answers with headers only: the token and the first-generation Cloud
Servers URL. It carries no roles and no regions, so it serves first-generation servers
only. ``make_identity`` picks v1.0 or v2.0 from an account's ``identity_url``.
"""

from __future__ import annotations

import re
import time

from exporter.config import AccountConfig, is_identity_v1
from exporter.errors import AUTH, BAD_RESPONSE, HTTP_ERROR, RATE_LIMITED, UpstreamError
from exporter.rackspace.client import RATE_LIMIT_STATUSES, ApiClient, parse_retry_after, strip_query
from exporter.rackspace.identity import (
    FIRST_GEN_SERVICE,
    RACKCONNECT_ROLE,
    Access,
    Identity,
    TokenCache,
)

# "Authentication tokens are typically valid for 24 hours"; used when no s-maxage is given.
DEFAULT_LIFETIME = 86400.0
_S_MAXAGE = re.compile(r"s-maxage\s*=\s*(\d+)", re.IGNORECASE)


class IdentityV1(TokenCache):
    """Authenticates one account against Identity v1.0 and caches its token.

    Offers the same ``access()``/``invalidate()`` as :class:`Identity`. The answer has no
    roles; the account is assumed to have RackConnect (set ``rackconnect: false`` in the
    configuration to say otherwise) and no Managed Operations, which first-generation
    servers never report.
    """

    def __init__(self, client: ApiClient, url: str, username: str, api_key: str) -> None:
        if not api_key:
            raise ValueError("Identity v1.0 needs an API key")
        super().__init__()
        self._client = client
        self.url = url.rstrip("/")
        self._username = username
        self._api_key = api_key

    def _authenticate(self) -> Access:
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
            raise UpstreamError(RATE_LIMITED, where, code, parse_retry_after(response.headers))
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
            expires=time.time() + lifetime,
            tenant_id=response.headers.get("X-Tenant-Id", "").strip()
            or servers_url.rstrip("/").rsplit("/", 1)[-1],
            roles=frozenset({RACKCONNECT_ROLE}),
            endpoints=endpoints,
        )


def make_identity(client: ApiClient, account: AccountConfig) -> Identity | IdentityV1:
    """Identity v1.0 when the account's ``identity_url`` ends in ``/v1.0``, else v2.0."""
    if is_identity_v1(account.identity_url):
        return IdentityV1(client, account.identity_url, account.username, account.api_key or "")
    return Identity(
        client,
        account.identity_url,
        account.username,
        api_key=account.api_key,
        password=account.password,
    )
