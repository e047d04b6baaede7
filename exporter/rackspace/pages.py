"""Listing pages decoded straight into typed structs of the fields the exporter reads.

A page of 1,000 servers decodes several times faster this way than into dicts and lists,
and holds a fraction of the memory: unknown fields are skipped while parsing. A page that
does not fit the types (a number where a string belongs, a lone surrogate escape, NaN...)
is decoded again generically and read as before, so odd documents give the same records.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from exporter.model import (
    AUTOMATION_STATUS_KEY,
    FEATURE_KEYS,
    MANAGED_STATUS_KEY,
    UNPROCESSABLE_REASON_KEY,
)

UNSET = msgspec.UNSET
_META_VALUE = str | None | msgspec.UnsetType


class Item(msgspec.Struct, gc=False, frozen=True):
    """One server of a listing page; ``metadata`` is a struct made by ``page_type``."""

    id: str | int
    name: str | None = None
    status: str | None = None
    created: str | None = None
    updated: str | None = None
    metadata: Any = None


def metadata_keys(labels: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """Every metadata key the exporter reads: the automation ones, then the labels'."""
    keys = [AUTOMATION_STATUS_KEY, MANAGED_STATUS_KEY, UNPROCESSABLE_REASON_KEY]
    keys += [key for group in FEATURE_KEYS.values() for key in group]
    keys += [key for _, key in labels]
    return tuple(dict.fromkeys(keys))


@lru_cache(maxsize=16)
def page_type(keys: tuple[str, ...]) -> tuple[msgspec.json.Decoder[Any], tuple[str, ...]]:
    """A decoder of listing pages that reads these metadata keys, and the keys in order."""
    fields = [(f"k{i}", _META_VALUE, UNSET) for i in range(len(keys))]
    metadata = msgspec.defstruct(
        "Metadata",
        fields,
        rename={f"k{i}": key for i, key in enumerate(keys)},
        gc=False,
        frozen=True,
    )
    item: Any = msgspec.defstruct(
        "Item", [("metadata", metadata | None, None)], bases=(Item,), gc=False, frozen=True
    )
    servers: Any = list[item]
    page = msgspec.defstruct("Page", [("servers", servers), ("servers_links", Any, None)], gc=False)
    return msgspec.json.Decoder(page), keys


def decode_page(data: bytes, labels: tuple[tuple[str, str], ...]) -> tuple[list[Item], Any]:
    """The page's servers as items, and its ``servers_links``.

    Raises msgspec.DecodeError (ValidationError included) when the page does not fit the
    types: the caller then reads it generically.
    """
    decoder, _ = page_type(metadata_keys(labels))
    page = decoder.decode(data)
    return page.servers, page.servers_links


def as_doc(item: Item, labels: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The item as the small server document ``Server.from_api`` reads."""
    doc: dict[str, Any] = {
        "id": item.id,
        "name": item.name,
        "status": item.status,
        "created": item.created,
        "updated": item.updated,
    }
    meta = item.metadata
    if meta is not None:
        _, keys = page_type(metadata_keys(labels))
        doc["metadata"] = {
            key: value
            for key, value in zip(keys, msgspec.structs.astuple(meta), strict=True)
            if value is not UNSET
        }
    return doc
