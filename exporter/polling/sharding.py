"""Split the configured accounts between replicas: ``--shard.index`` of ``--shard.total``.

Each account goes to one shard, chosen by rendezvous hashing of its name: every replica
computes the same answer without talking to the others, the split does not depend on the
order of the config file, and changing the number of shards from n to n+1 moves only about
1/(n+1) of the accounts. Prometheus scrapes every replica and so sees every account once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")

_ORDINAL = re.compile(r"^(?:.*-)?(\d+)$")


def parse_shard_index(text: str) -> int:
    """A shard index: ``2``, or a StatefulSet pod name such as ``rackconnect-exporter-2``."""
    match = _ORDINAL.match(text.strip())
    if match is None:
        raise ValueError(f"expected a number or a name ending in -NUMBER, not {text!r}")
    return int(match.group(1))


def _weight(account: str, shard: int) -> bytes:
    return hashlib.blake2b(f"{shard}\0{account}".encode(), digest_size=8).digest()


def shard_of(account: str, total: int) -> int:
    """The shard (0 .. total-1) that polls ``account``."""
    if total < 1:
        raise ValueError("total must be at least 1")
    return max(range(total), key=lambda shard: _weight(account, shard))


def select(items: Iterable[T], name_of, index: int, total: int) -> list[T]:
    """The items whose name falls to shard ``index`` of ``total``."""
    return [item for item in items if shard_of(name_of(item), total) == index]
