"""How Cloud Servers pages: next links and the dates a delta asks from.

A next link is followed on the catalog's endpoint only and keeps the listing's
``changes-since``; v2 takes that date as ISO 8601 UTC, and a listing is dated by the
upstream's own clock (its ``Date`` header).
"""

from __future__ import annotations

import email.utils
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests


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


def same_origin(href: str, base: str) -> str:
    """``href`` on the scheme and host of ``base``, so the token never goes elsewhere.

    Nova behind a TLS-terminating proxy is known to write ``http://`` (or an internal
    host) into its next links; the token is only ever sent to the catalog's endpoint.
    """
    link, origin = urlsplit(href), urlsplit(base)
    if (link.scheme, link.netloc) == (origin.scheme, origin.netloc):
        return href
    return urlunsplit((origin.scheme, origin.netloc, link.path, link.query, ""))


def with_changes_since(url: str, since: str) -> str:
    """The next link with the listing's ``changes-since``, which some upstreams drop.

    Without it the next page would be a full page read as a delta, hiding deletions.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "changes-since" for key, _ in query):
        return url
    query.append(("changes-since", since))
    return urlunsplit(parts._replace(query=urlencode(query)))


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
