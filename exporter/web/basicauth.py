"""``basic_auth_users``: checks ``Authorization: Basic`` against bcrypt hashes."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import threading

import bcrypt
from cachetools import LRUCache

AUTH_CACHE_SIZE = 1024
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; the library refuses longer ones


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, caching verified answers.

    bcrypt is slow by design, so each (user, password, hash) answer is kept in a bounded
    LRU cache keyed by a SHA-256 digest (never the password itself), and only one bcrypt
    comparison runs at a time so a flood of guesses cannot take every core.
    """

    def __init__(self) -> None:
        self._cache: LRUCache[bytes, bool] = LRUCache(maxsize=AUTH_CACHE_SIZE)
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    def check(self, users: dict[str, bytes], header: str | None) -> bool:
        """True when the header carries a known user and the right password."""
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep or len(password.encode()) > MAX_PASSWORD_BYTES:
            return False
        hashed = users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed or b""))).digest()
        with self._cache_lock:
            known = self._cache.get(key)
        if known is not None:
            return known
        with self._bcrypt_lock:
            # Every check costs at least the highest configured cost, so timing tells
            # neither unknown users nor users with a cheaper hash apart.
            top = max(_rounds(h) for h in users.values())
            ok = hashed is not None and bcrypt.checkpw(password.encode(), hashed)
            if hashed is None or _rounds(hashed) < top:
                bcrypt.checkpw(password.encode(), _dummy_hash(top))
        with self._cache_lock:
            self._cache[key] = ok
        return ok


def _rounds(hashed: bytes) -> int:
    """The cost factor of a bcrypt hash (``$2b$12$...`` -> 12)."""
    return int(hashed.split(b"$")[2])


@functools.cache
def _dummy_hash(rounds: int) -> bytes:
    """A hash as costly as the configured ones, for users that do not exist."""
    return bcrypt.hashpw(b"unknown user", bcrypt.gensalt(rounds=min(max(rounds, 4), 31)))
