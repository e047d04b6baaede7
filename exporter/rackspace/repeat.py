"""What lets a poll's repeated requests cost less: prepared GETs, digests of bodies.

Every poll sends the same GETs and mostly reads the same bodies.

``requests`` prepares each request anew (merging the session's headers, parameters and
cookies, encoding the URL), a fixed cost per request that is much of a small answer's
CPU. A GET with the same URL, parameters and headers as an earlier one is sent as a copy
of that one's preparation, while the session holds no cookies (their header belongs to
the preparation); anything else is prepared by the session as usual. A body is known
again by its digest, without being joined or decoded.
"""

from __future__ import annotations

import array
from collections.abc import Hashable, Mapping
from typing import Any

import requests

MAX_KEPT = 256  # preparations kept; all are forgotten when one more is needed


class PreparedGets:
    """The session's GET preparations, by URL, parameters and headers."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session
        self._kept: dict[Hashable, requests.PreparedRequest] = {}

    def get(
        self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str]
    ) -> requests.PreparedRequest | None:
        """A fresh copy of the GET's preparation; None when it cannot be reused."""
        if self._session.cookies:
            return None
        try:
            key = (url, tuple((params or {}).items()), tuple(headers.items()))
            prepared = self._kept.get(key)
        except TypeError:  # a parameter that is a list: prepared as usual
            return None
        if prepared is None:
            request = requests.Request("GET", url, headers=dict(headers), params=params or {})
            prepared = self._session.prepare_request(request)
            if len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            self._kept[key] = prepared
        return prepared.copy()


def body_digest(chunks: list[bytes]) -> bytes:
    """What tells a body from another in this process: each chunk's hash and the size.

    ``hash`` of bytes is SipHash-1-3 under this process's random key: 64 bits a chunk tell
    a changed body as surely as needed here, at three times SHA-256's speed. The same body
    read in other chunks only looks changed, and is parsed again.
    """
    hashes = array.array("q", map(hash, chunks))
    hashes.append(sum(map(len, chunks)))
    return hashes.tobytes()
