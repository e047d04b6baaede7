"""First-generation Cloud Servers (API v1.0): list every server, read one server.

The base URL is the ``cloudServers`` catalog entry (Identity v2.0), which has no region,
or the ``X-Server-Management-Url`` header (Identity v1.0). Ids are integers; paging is
``limit``/``offset`` with at most 1000 servers a page. Their series carry region GLOBAL.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from exporter.errors import AUTH, BAD_RESPONSE, UpstreamError
from exporter.model import FIRST, Server
from exporter.rackspace.client import ApiClient, check_status, decode_json
from exporter.rackspace.cloudservers import Listing, response_date, split_listing
from exporter.rackspace.identity import FIRST_GEN_SERVICE, Identity
from exporter.rackspace.identity_v1 import IdentityV1

GLOBAL = "GLOBAL"
PAGE_SIZE = 1000  # the most v1.0 returns in one page
MAX_PAGES = 10_000  # a guard against a listing that never ends


class FirstGenServers:
    """Cloud Servers v1.0 for one account, through its Identity token (v2.0 or v1.0)."""

    def __init__(
        self, client: ApiClient, identity: Identity | IdentityV1, page_size: int = PAGE_SIZE
    ) -> None:
        self._client = client
        self._identity = identity
        self.page_size = page_size

    def available(self) -> bool:
        """True when the account's catalog has first-generation Cloud Servers."""
        return bool(self._identity.access().region_urls(FIRST_GEN_SERVICE).get(""))

    def base_url(self) -> str:
        """The v1.0 URL of the account (``.../v1.0/{account}``)."""
        url = self._identity.access().region_urls(FIRST_GEN_SERVICE).get("")
        if not url:
            raise UpstreamError(AUTH, "no first-generation Cloud Servers (cloudServers) endpoint")
        return url

    def list_servers(self) -> list[Server]:
        """Every first-generation server, page by page (``limit``/``offset``)."""
        return self.list_region(GLOBAL).servers

    def list_region(self, region: str = GLOBAL, changes_since: float | None = None) -> Listing:
        """Every first-generation server, or only those changed since a time (epoch).

        v1.0 takes ``changes-since`` in epoch seconds, answers 304 Not Modified when
        nothing changed, and includes servers deleted since then with status DELETED.
        """
        url = self.base_url() + "/servers/detail"
        listing = Listing()
        offset = 0
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": self.page_size, "offset": offset}
            if changes_since is not None:
                params["changes-since"] = str(int(changes_since))
            sent = time.time()
            response = get_response_with_token(self._client, self._identity, url, GLOBAL, params)
            if listing.requests == 0:
                listing.date = response_date(response) or sent
            listing.requests += 1
            if response.status_code == 304 and changes_since is not None:
                listing.not_modified = True
                return listing
            check_status(response, "GET", url)
            doc = decode_json(response, "GET", url)
            before = len(listing.servers) + len(listing.deleted)
            split_listing(doc, url, listing, FIRST)
            page = len(listing.servers) + len(listing.deleted) - before
            # A short page is the last one; an offset past the end answers an empty list.
            if page < self.page_size:
                return listing
            offset += page
        raise UpstreamError(BAD_RESPONSE, f"more than {MAX_PAGES} pages of first-gen servers")

    def get_server_doc(self, server_id: str) -> dict[str, Any]:
        """One server's document (``GET /servers/{id}``)."""
        url = f"{self.base_url()}/servers/{server_id}"
        doc = get_with_token(self._client, self._identity, url, GLOBAL, None)
        server = doc.get("server") if isinstance(doc, dict) else None
        if not isinstance(server, dict):
            raise UpstreamError(BAD_RESPONSE, f"GET {url}: no server object")
        return server

    def get_server(self, server_id: str) -> Server:
        """One server as a record."""
        return _record(self.get_server_doc(server_id), server_id)


def _record(doc: dict[str, Any], server_id: str) -> Server:
    try:
        return Server.from_api(doc, FIRST)
    except ValueError as exc:
        raise UpstreamError(BAD_RESPONSE, f"server {server_id}: {exc}") from exc


def get_with_token(
    client: ApiClient,
    identity: Identity | IdentityV1,
    url: str,
    region: str,
    params: dict[str, Any] | None,
) -> Any:
    """GET a Cloud Servers URL with the account's token; on 401 authenticate again once."""
    response = get_response_with_token(client, identity, url, region, params)
    check_status(response, "GET", url)
    return decode_json(response, "GET", url)


def get_response_with_token(
    client: ApiClient,
    identity: Identity | IdentityV1,
    url: str,
    region: str,
    params: dict[str, Any] | None,
) -> requests.Response:
    """The answer to a GET with the account's token, whatever its status (after one re-auth)."""
    access = identity.access()
    response = _send(client, url, region, params, access.token)
    if response.status_code == 401:
        identity.invalidate(access)
        response = _send(client, url, region, params, identity.access().token)
    return response


def _send(
    client: ApiClient, url: str, region: str, params: dict[str, Any] | None, token: str
) -> requests.Response:
    return client.request(
        "GET", url, api="servers", region=region, headers={"X-Auth-Token": token}, params=params
    )
