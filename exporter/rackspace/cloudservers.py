"""Cloud Servers: the next generation (v2, per region) and the first (v1.0, region GLOBAL).

v2 lives at the ``cloudServersOpenStack`` catalog entry of each region and pages with
``servers_links``. v1.0 lives at the ``cloudServers`` entry (Identity v2.0), which has no
region, or at the ``X-Server-Management-Url`` header (Identity v1.0); its ids are integers,
it pages with ``limit``/``offset`` and its series carry region GLOBAL. Both go through
``CloudServers.get``: the account's token, and one new token after a 401.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import requests
from requests import Response  # Listing.requests hides the module in its class body

from exporter.errors import AUTH, BAD_RESPONSE, UpstreamError
from exporter.model import FIRST, NEXT, Server
from exporter.rackspace.client import (
    OK_STATUSES,
    Answer,
    ApiClient,
    check_status,
    decode_json,
    loads,
    strip_query,
)
from exporter.rackspace.identity import FIRST_GEN_SERVICE, NEXT_GEN_SERVICE, TokenCache
from exporter.rackspace.pages import as_doc, decode_page
from exporter.rackspace.paging import (
    iso_utc,
    next_link,
    response_date,
    same_origin,
    with_changes_since,
)

GLOBAL = "GLOBAL"  # the region of first-generation servers
PAGE_SIZE = 1000  # the most either version returns in one page
MAX_PAGES = 10_000  # a guard against a listing that never ends
# The most servers one listing (an account's region) may hold: a bound on memory.
MAX_SERVERS = 100_000
DELETED = "DELETED"
NOTHING: Mapping[str, Server] = MappingProxyType({})


@dataclass(frozen=True)
class Page:
    """What one page of a full listing added, reused while its body stays the same."""

    digest: bytes  # of the body, as ``repeat.body_digest`` gives it
    servers: tuple[Server, ...]
    deleted: tuple[str, ...]
    next: str | None

    def add_to(self, listing: Listing) -> None:
        listing.servers.extend(self.servers)
        listing.deleted.extend(self.deleted)


@dataclass
class Listing:
    """One listing of a region: in full, or only what changed since a time.

    ``date`` is the upstream's own clock (its ``Date`` header) when the first page was
    answered, or the local clock when it sent none: the next ``changes-since`` starts there.
    """

    full: bool = True
    servers: list[Server] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    date: float | None = None
    requests: int = 0
    not_modified: bool = False  # first-gen answers 304 when nothing changed
    pages: dict[str, Page] = field(default_factory=dict, repr=False)  # a full listing's

    def add_page(self, response: Response, sent: float) -> None:
        """Count one more page; the first one dates the listing."""
        if self.requests == 0:
            self.date = response_date(response) or sent
        self.requests += 1


class CloudServers:
    """Cloud Servers of one account, both generations, through its token cache.

    ``list_region`` and ``get_server`` take a catalog region for v2 or GLOBAL for v1.0.
    """

    def __init__(
        self,
        client: ApiClient,
        tokens: TokenCache,
        *,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], float] = time.time,
        metadata_labels: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._client = client
        self.metadata_labels = metadata_labels
        self._tokens = tokens
        self.page_size = page_size
        self._clock = clock
        # Per region: the pages of the last full listing, by URL, so that an unchanged page
        # is not even decoded again.
        self._pages: dict[str, dict[str, Page]] = {}

    def base_url(self, region: str) -> str:
        """The API's URL for ``region`` from the service catalog (v1.0's for GLOBAL)."""
        access = self._tokens.access()
        if region == GLOBAL:
            url = access.region_urls(FIRST_GEN_SERVICE).get("")
            if not url:
                raise UpstreamError(
                    AUTH, "no first-generation Cloud Servers (cloudServers) endpoint"
                )
            return url
        urls = access.region_urls(NEXT_GEN_SERVICE)
        if region not in urls:
            raise UpstreamError(AUTH, f"region {region} is not in the service catalog")
        return urls[region]

    def get(self, region: str, url: str, params: dict[str, Any] | None) -> requests.Response:
        """The answer to a GET with the account's token, whatever its status."""
        return self.fetch(region, url, params).loaded()

    def fetch(self, region: str, url: str, params: dict[str, Any] | None) -> Answer:
        """``get``, with the body not yet joined, and its digest."""

        def send(token: str) -> Answer:
            return self._client.fetch(
                "GET",
                url,
                api="servers",
                region=region,
                headers={"X-Auth-Token": token},
                params=params,
            )

        return self._tokens.send(send)

    def _read(self, response: requests.Response, url: str) -> Any:
        """The decoded body of a successful answer; UpstreamError for any other."""
        check_status(response, "GET", url, self._clock)
        return decode_json(response, "GET", url)

    def get_server(self, region: str, server_id: str) -> dict[str, Any]:
        """One server's document (``GET /servers/{id}``); a missing server is HTTP 404."""
        url = f"{self.base_url(region)}/servers/{quote(server_id, safe='')}"
        doc = self._read(self.get(region, url, None), url)
        server = doc.get("server") if isinstance(doc, dict) else None
        if not isinstance(server, dict):
            raise UpstreamError(BAD_RESPONSE, f"GET {url}: no server object")
        return server

    def list_region(
        self,
        region: str,
        changes_since: float | None = None,
        known: Mapping[str, Server] = NOTHING,
    ) -> Listing:
        """List ``region`` in full, or only the servers changed since a time (epoch).

        With ``changes_since`` the answer includes servers deleted since then, with status
        DELETED; their ids land in ``Listing.deleted``. ``known`` are the region's records
        by id: a decoded server equal to its known record is that very record, not a copy.
        """
        if region == GLOBAL:
            listing = self._list_first_gen(changes_since, known)
        else:
            listing = self._list_next_gen(region, changes_since, known)
        if changes_since is None:
            self._pages[region] = listing.pages
        listing.pages = {}
        return listing

    def _list_next_gen(
        self, region: str, changes_since: float | None, known: Mapping[str, Server]
    ) -> Listing:
        base = self.base_url(region)
        url: str | None = base + "/servers/detail"
        first: dict[str, Any] = {"limit": self.page_size}
        if changes_since is not None:
            first["changes-since"] = iso_utc(changes_since)
        params: dict[str, Any] | None = first
        seen: set[str] = set()
        listing = Listing(full=changes_since is None)
        while url is not None:
            if len(seen) >= MAX_PAGES:
                raise UpstreamError(BAD_RESPONSE, f"more than {MAX_PAGES} pages in {region}")
            url = self._page(region, url, params, listing, NEXT, known=known)
            check_size(len(listing.servers), region)
            if url is not None:
                url = same_origin(url, base)
                if changes_since is not None:
                    url = with_changes_since(url, first["changes-since"])
                if url in seen:
                    raise UpstreamError(BAD_RESPONSE, f"GET {region} servers: next link repeats")
                seen.add(url)
            params = None  # the next link carries limit, marker and changes-since itself
        return listing

    def _page(
        self,
        region: str,
        url: str,
        params: dict[str, Any] | None,
        listing: Listing,
        generation: str,
        *,
        known: Mapping[str, Server],
    ) -> str | None:
        """Fetch and add one page; its body is gone when the next one is fetched.

        A page of a full listing whose body is the same as last time adds what it added
        then, without being joined or decoded.
        """
        sent = self._clock()
        answer = self.fetch(region, url, params)
        listing.add_page(answer.response, sent)
        if answer.status_code == 304 and generation == FIRST and "changes-since" in (params or {}):
            listing.not_modified = True
            return None
        if answer.status_code not in OK_STATUSES:
            check_status(answer.loaded(), "GET", url, self._clock)
        key = url + "?" + urlencode(params) if params else url
        page = self._pages.get(region, {}).get(key) if listing.full else None
        if page is not None and page.digest == answer.digest:
            page.add_to(listing)
            listing.pages[key] = page
            return page.next
        servers, deleted = len(listing.servers), len(listing.deleted)
        href = add_page_bytes(answer.join(), url, listing, generation, self.metadata_labels)
        for i in range(servers, len(listing.servers)):
            old = known.get(listing.servers[i].id)
            if old is not None and old == listing.servers[i]:
                listing.servers[i] = old
        if listing.full:
            listing.pages[key] = Page(
                answer.digest,
                tuple(listing.servers[servers:]),
                tuple(listing.deleted[deleted:]),
                href,
            )
        return href

    def _list_first_gen(self, changes_since: float | None, known: Mapping[str, Server]) -> Listing:
        # v1.0 takes changes-since in epoch seconds and answers 304 when nothing changed.
        url = self.base_url(GLOBAL) + "/servers/detail"
        listing = Listing(full=changes_since is None)
        offset = 0
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {"limit": self.page_size, "offset": offset}
            if changes_since is not None:
                params["changes-since"] = str(int(changes_since))
            before = len(listing.servers) + len(listing.deleted)
            self._page(GLOBAL, url, params, listing, FIRST, known=known)
            if listing.not_modified:
                return listing
            check_size(len(listing.servers), GLOBAL)
            page = len(listing.servers) + len(listing.deleted) - before
            # A short page is the last one; an offset past the end answers an empty list.
            if page < self.page_size:
                return listing
            offset += page
        raise UpstreamError(BAD_RESPONSE, f"more than {MAX_PAGES} pages of first-gen servers")


def check_size(count: int, region: str, changes: bool = False) -> None:
    """Refuse a region of more than MAX_SERVERS servers: a listing (checked page by page,
    so that paging stops there), or the region with a delta's ``changes`` merged."""
    if count > MAX_SERVERS:
        what, used = (" with these changes", "changes are") if changes else ("", "listing is")
        raise UpstreamError(
            BAD_RESPONSE,
            f"GET {region} servers: more than {MAX_SERVERS} servers{what}, the most one "
            f"account and region may have; the {used} not used",
        )


def add_page_bytes(
    data: bytes,
    url: str,
    into: Listing,
    generation: str = NEXT,
    metadata_labels: tuple[tuple[str, str], ...] = (),
) -> str | None:
    """Decode one listing page into ``into``; return its ``rel=next`` href, if any."""
    try:
        items, links = decode_page(data, metadata_labels)
    except msgspec.DecodeError:
        try:
            doc = loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamError(
                BAD_RESPONSE, f"GET {strip_query(url)}: body is not valid JSON"
            ) from exc
        split_listing(doc, url, into, generation, metadata_labels)
        return next_link(doc)
    add_items(
        (as_doc(item, metadata_labels) for item in items), url, into, generation, metadata_labels
    )
    return next_link({"servers_links": links})


def split_listing(
    doc: object,
    url: str,
    into: Listing,
    generation: str = NEXT,
    metadata_labels: tuple[tuple[str, str], ...] = (),
) -> None:
    """Add a decoded page's servers to ``into``: live ones as records, DELETED ones as ids."""
    items = doc.get("servers") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise UpstreamError(BAD_RESPONSE, f"GET {strip_query(url)}: no servers list")
    add_items(items, url, into, generation, metadata_labels)


def add_items(
    items: Iterable[object],
    url: str,
    into: Listing,
    generation: str = NEXT,
    metadata_labels: tuple[tuple[str, str], ...] = (),
) -> None:
    """Add server documents to ``into``: live ones as records, DELETED ones as ids."""
    servers, deleted = into.servers, into.deleted
    for item in items:
        if not isinstance(item, dict):
            raise UpstreamError(BAD_RESPONSE, f"GET {strip_query(url)}: a server is not an object")
        # changes-since also returns servers deleted since then, with status DELETED.
        status = item.get("status")
        if isinstance(status, str) and status.upper() == DELETED:
            raw_id = item.get("id")
            if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and raw_id != "":
                deleted.append(str(raw_id))
                continue
        try:
            servers.append(Server.from_api(item, generation, metadata_labels))
        except ValueError as exc:
            raise UpstreamError(BAD_RESPONSE, f"GET {strip_query(url)}: {exc}") from exc
