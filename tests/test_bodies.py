"""Bodies from shared parts: the gzip form is valid and equals the plain form."""

from __future__ import annotations

import gzip
import os
import platform
import zlib

import pytest

from exporter.app import fix_mmap_threshold, limit_arenas
from exporter.exposition.gzipparts import (
    COALESCE,
    Body,
    Part,
    _python_crc32_combine,
    crc32_combine,
)


@pytest.mark.parametrize("length", [0, 1, 7, 1000, 123_457, 5_000_000])
def test_the_combined_crc32_matches_zlib(length: int) -> None:
    head, tail = os.urandom(333), os.urandom(length)
    body = Body([Part(head), Part(tail)])
    trailer = body.joined(compressed=True)[-8:]
    assert int.from_bytes(trailer[:4], "little") == zlib.crc32(head + tail)


@pytest.mark.parametrize("combine", [crc32_combine, _python_crc32_combine])
@pytest.mark.parametrize("length", [0, 1, 7, 1000, 123_457, 5_000_000])
def test_both_crc32_combines_agree_with_zlib(combine, length: int) -> None:
    """zlib's (loaded where it can be) and the Python fallback give the same CRC."""
    head, tail = os.urandom(333), os.urandom(length)
    assert combine(zlib.crc32(head), zlib.crc32(tail), length) == zlib.crc32(head + tail)


def test_zlib_s_combine_is_used_where_the_library_is_found() -> None:
    assert crc32_combine is not _python_crc32_combine


def test_gzip_form_decompresses_to_the_plain_form() -> None:
    big = Part(b'rackconnect_server_ready{account="a",region="ORD",server_id="x"} 1\n' * 5000)
    parts = [b"# HELP a\n", big, b"", b"# TYPE a gauge\n", Part(b"small\n"), big, b"# EOF\n"]
    body = Body(parts)
    plain = b"".join(p.plain() if isinstance(p, Part) else p for p in parts)
    payload = body.parts(compressed=False)
    assert payload.length == body.length == len(plain)
    assert b"".join(payload.chunks) == plain
    gzipped = body.parts(compressed=True)
    assert gzipped.length == len(body.joined(compressed=True))
    assert gzip.decompress(body.joined(compressed=True)) == plain
    # parts are shared, never copied or compressed again; only loose bytes are joined
    assert [p is big for p in body.merged] == [False, True, False, False, True, False]
    assert [len(c) for c in body.parts(compressed=False).chunks] == [
        9,
        len(big),
        15,
        6,
        len(big),
        6,
    ]
    loose = Body([b"a" * 10, b"b" * 10, b"c" * COALESCE, b"d"])
    assert [len(c) for c in loose.parts(compressed=False).chunks] == [20 + COALESCE, 1]


def test_a_part_keeps_only_its_deflate_stream() -> None:
    """The plain bytes are inflated when asked for, not held beside the compressed ones."""
    data = b'rackconnect_server_ready{account="a",region="ORD",server_id="x"} 1\n' * 5000
    part = Part(data)
    assert not hasattr(part, "__dict__")
    held = [name for name in Part.__slots__ if isinstance(getattr(part, name), bytes)]
    assert held == ["deflated"]
    assert len(part.deflated) < len(data) // 10
    assert part.plain() == data
    assert part.plain() is not part.plain()  # made on demand
    assert (len(part), part.crc) == (len(data), zlib.crc32(data))
    assert Part(b"").plain() == b""


def test_a_plain_body_is_inflated_as_it_is_sent() -> None:
    """Nothing is inflated before its turn: a plain scrape holds one part's lines at a time."""
    first = Part(b"# process\n")
    parts = [Part(b"line %d\n" % i * 20_000) for i in range(3)]
    body = Body(parts)
    payload = body.prepended(first, compressed=False)
    assert payload.length == len(first) + sum(map(len, parts))
    chunks = iter(payload.chunks)
    assert not isinstance(payload.chunks, list | tuple)
    assert next(chunks) == b"# process\n"
    assert [next(chunks) for _ in parts] == [p.plain() for p in parts]
    assert next(chunks, None) is None
    gzipped = body.prepended(first, compressed=True)
    assert body.prepended(first, compressed=True) is gzipped  # kept for the same first part
    assert gzip.decompress(b"".join(gzipped.chunks)) == first.plain() + body.joined(False)


def test_an_empty_body_is_valid_gzip() -> None:
    body = Body([])
    assert body.joined(False) == b""
    assert body.parts(compressed=False).length == 0
    assert gzip.decompress(body.joined(True)) == b""


def test_the_gzip_form_shares_the_parts_deflate_streams() -> None:
    """Neither format joins the regions' compressed bytes into a copy of its own."""
    region = Part(b'rackconnect_server_ready{id="1"} 1\n' * 1000)
    text, openmetrics = Body([b"# a\n", region]), Body([b"# b\n", region, b"# EOF\n"])
    assert any(p is region.deflated for p in text.parts(compressed=True).chunks)
    assert any(p is region.deflated for p in openmetrics.parts(compressed=True).chunks)
    assert gzip.decompress(b"".join(text.parts(compressed=True).chunks)) == text.joined(False)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_large_buffers_keep_their_own_mappings() -> None:
    # Without a fixed mmap threshold, replaced region buffers stay resident in the heap.
    assert fix_mmap_threshold()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_threads_share_two_heaps_unless_the_environment_says(monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_arenas()  # glibc read the variable itself
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_arenas()
