"""Cloud Servers API (next generation, v2): list a region's servers, read one server."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from exporter.identity import NEXT_GEN_SERVICE, Identity
from exporter.model import NEXT, Server
from exporter.upstream import (
    AUTH,
    BAD_RESPONSE,
    ApiClient,
    UpstreamError,
    check_status,
    decode_json,
    strip_query,
)

PAGE_SIZE = 1000  # the most Cloud Servers returns in one page
MAX_PAGES = 10_000  # a guard against a server that never stops sending next links
# The most servers one listing (an account's region) may hold: a bound on memory.
MAX_SERVERS = 100_000


class CloudServers:
    """Cloud Servers v2 for one account, through its Identity token."""

    def __init__(self, client: ApiClient, identity: Identity) -> None:
        self._client = client
        self._identity = identity

    def region_url(self, region: str) -> str:
        """The region's publicURL from the service catalog."""
        urls = self._identity.access().region_urls(NEXT_GEN_SERVICE)
        if region not in urls:
            raise UpstreamError(AUTH, f"region {region} is not in the service catalog")
        return urls[region]

    def list_servers(self, region: str) -> list[Server]:
        """Every server in ``region``, following ``servers_links`` page by page."""
        base = self.region_url(region)
        url: str | None = base + "/servers/detail"
        params: dict[str, Any] | None = {"limit": PAGE_SIZE}
        seen: set[str] = set()
        servers: list[Server] = []
        while url is not None:
            if len(seen) >= MAX_PAGES:
                raise UpstreamError(BAD_RESPONSE, f"more than {MAX_PAGES} pages in {region}")
            doc = self._get(region, url, params)
            servers.extend(parse_servers(doc, url))
            if len(servers) > MAX_SERVERS:
                raise UpstreamError(
                    BAD_RESPONSE,
                    f"GET {region} servers: more than {MAX_SERVERS} servers, the most one "
                    "account and region may have; the listing is not used",
                )
            url = next_link(doc)
            if url is not None:
                url = same_origin(url, base)
                if url in seen:
                    raise UpstreamError(BAD_RESPONSE, f"GET {region} servers: next link repeats")
                seen.add(url)
            params = None  # the next link carries limit and marker itself
        return servers

    def get_server(self, region: str, server_id: str) -> Server:
        """One server, by id (``GET /servers/{id}``)."""
        url = f"{self.region_url(region)}/servers/{server_id}"
        doc = self._get(region, url, None)
        server = doc.get("server") if isinstance(doc, dict) else None
        if not isinstance(server, dict):
            raise UpstreamError(BAD_RESPONSE, f"GET {url}: no server object")
        return _to_server(server, url)

    def _get(self, region: str, url: str, params: dict[str, Any] | None) -> Any:
        access = self._identity.access()
        response = self._send(region, url, params, access.token)
        if response.status_code == 401:
            # The token expired or was revoked: authenticate again, once.
            self._identity.invalidate(access)
            response = self._send(region, url, params, self._identity.access().token)
        check_status(response, "GET", url)
        return decode_json(response, "GET", url)

    def _send(
        self, region: str, url: str, params: dict[str, Any] | None, token: str
    ) -> requests.Response:
        return self._client.request(
            "GET", url, api="servers", region=region, headers={"X-Auth-Token": token}, params=params
        )


def parse_servers(doc: object, url: str, generation: str = NEXT) -> list[Server]:
    """The ``servers`` list of a listing page as records; bad_response if malformed."""
    items = doc.get("servers") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise UpstreamError(BAD_RESPONSE, f"GET {strip_query(url)}: no servers list")
    return [_to_server(item, url, generation) for item in items]


def _to_server(item: object, url: str, generation: str = NEXT) -> Server:
    if not isinstance(item, dict):
        raise UpstreamError(BAD_RESPONSE, f"GET {strip_query(url)}: a server is not an object")
    try:
        return Server.from_api(item, generation)
    except ValueError as exc:
        raise UpstreamError(BAD_RESPONSE, f"GET {strip_query(url)}: {exc}") from exc


def same_origin(href: str, base: str) -> str:
    """``href`` on the scheme and host of ``base``, so the token never goes elsewhere.

    Nova behind a TLS-terminating proxy is known to write ``http://`` (or an internal
    host) into its next links; the token is only ever sent to the catalog's endpoint.
    """
    link, origin = urlsplit(href), urlsplit(base)
    if (link.scheme, link.netloc) == (origin.scheme, origin.netloc):
        return href
    return urlunsplit((origin.scheme, origin.netloc, link.path, link.query, ""))


def next_link(doc: object) -> str | None:
    """The ``rel=next`` href of ``servers_links``, if any."""
    links = doc.get("servers_links") if isinstance(doc, dict) else None
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "next":
            href = link.get("href")
            if isinstance(href, str) and href:
                return href
    return None
