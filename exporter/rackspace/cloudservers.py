"""Cloud Servers API (next generation, v2): list a region's servers, read one server."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from exporter.errors import AUTH, BAD_RESPONSE, UpstreamError
from exporter.model import NEXT, Server
from exporter.rackspace.client import ApiClient, check_status, decode_json, strip_query
from exporter.rackspace.identity import NEXT_GEN_SERVICE, Identity

PAGE_SIZE = 1000  # the most Cloud Servers returns in one page
MAX_PAGES = 10_000  # a guard against a server that never stops sending next links
DELETED = "DELETED"


@dataclass
class Listing:
    """One listing of a region: in full, or only what changed since a time.

    ``date`` is the upstream's own clock (its ``Date`` header) when the first page was
    answered, or the local clock when it sent none: the next ``changes-since`` starts there.
    """

    servers: list[Server] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    date: float | None = None
    requests: int = 0
    not_modified: bool = False  # first-gen answers 304 when nothing changed


def iso_utc(when: float) -> str:
    """``changes-since`` for Cloud Servers v2: ISO 8601, UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def response_date(response: requests.Response) -> float | None:
    """The ``Date`` header as epoch seconds, if present and readable."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


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
        return self.list_region(region).servers

    def list_region(self, region: str, changes_since: float | None = None) -> Listing:
        """List ``region`` in full, or only the servers changed since a time (epoch).

        With ``changes_since`` the answer includes servers deleted since then, with status
        DELETED; their ids land in ``Listing.deleted``.
        """
        base = self.region_url(region)
        url: str | None = base + "/servers/detail"
        params: dict[str, Any] | None = {"limit": PAGE_SIZE}
        if changes_since is not None:
            params["changes-since"] = iso_utc(changes_since)
        seen: set[str] = set()
        listing = Listing()
        while url is not None:
            if len(seen) >= MAX_PAGES:
                raise UpstreamError(BAD_RESPONSE, f"more than {MAX_PAGES} pages in {region}")
            sent = time.time()
            doc, response = self._get_page(region, url, params)
            if listing.requests == 0:
                listing.date = response_date(response) or sent
            listing.requests += 1
            split_listing(doc, url, listing)
            if len(listing.servers) > MAX_SERVERS:
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
            params = None  # the next link carries limit, marker and changes-since itself
        return listing

    def get_server(self, region: str, server_id: str) -> Server:
        """One server, by id (``GET /servers/{id}``)."""
        url = f"{self.region_url(region)}/servers/{server_id}"
        doc = self._get(region, url, None)
        server = doc.get("server") if isinstance(doc, dict) else None
        if not isinstance(server, dict):
            raise UpstreamError(BAD_RESPONSE, f"GET {url}: no server object")
        return _to_server(server, url)

    def _get(self, region: str, url: str, params: dict[str, Any] | None) -> Any:
        return self._get_page(region, url, params)[0]

    def _get_page(
        self, region: str, url: str, params: dict[str, Any] | None
    ) -> tuple[Any, requests.Response]:
        access = self._identity.access()
        response = self._send(region, url, params, access.token)
        if response.status_code == 401:
            # The token expired or was revoked: authenticate again, once.
            self._identity.invalidate(access)
            response = self._send(region, url, params, self._identity.access().token)
        check_status(response, "GET", url)
        return decode_json(response, "GET", url), response

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


def split_listing(doc: object, url: str, into: Listing, generation: str = NEXT) -> None:
    """Add a page's servers to ``into``: live ones as records, DELETED ones as ids."""
    items = doc.get("servers") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise UpstreamError(BAD_RESPONSE, f"GET {strip_query(url)}: no servers list")
    servers, deleted = into.servers, into.deleted
    for item in items:
        # changes-since also returns servers deleted since then, with status DELETED.
        status = item.get("status") if isinstance(item, dict) else None
        if isinstance(status, str) and status.upper() == DELETED:
            raw_id = item.get("id")  # type: ignore[union-attr]
            if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and raw_id != "":
                deleted.append(str(raw_id))
                continue
        servers.append(_to_server(item, url, generation))


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
