"""The ``process_*`` families in /metrics: both formats, one gzip member, once a second."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.exposition.families import PROCESS_PREFIX
from exporter.exposition.process import ProcessFamilies
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer
from tests.expo_helpers import samples
from tests.helpers import STOP_POLL

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


@pytest.fixture
def served() -> Iterator[tuple[str, ProcessFamilies, list[float]]]:
    """An exporter's HTTP server whose process families use a clock that moves when told."""
    clock = [100.0]
    process = ProcessFamilies(clock=lambda: clock[0])
    httpd = ExporterHTTPServer(("127.0.0.1", 0), Store(60), process=process)
    httpd.start(STOP_POLL)
    yield httpd.url, process, clock
    httpd.shutdown()
    httpd.server_close()


def get(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(url + "/metrics", headers=headers or {}, timeout=5)


def test_text_format_has_resident_memory(served) -> None:
    url, _, _ = served
    parsed = samples(get(url).content)
    (rss,) = [v for (name, _), v in parsed.items() if name == "process_resident_memory_bytes"]
    assert rss > 1_000_000
    assert any(name == "rackconnect_exporter_build_info" for name, _ in parsed)


def test_openmetrics_parses_with_one_eof(served) -> None:
    url, _, _ = served
    text = get(url, OPENMETRICS).text
    assert text.count("# EOF") == 1
    assert text.endswith("# EOF\n")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"process_resident_memory_bytes", "process_cpu_seconds"} <= names
    assert "rackconnect_exporter_build" in names


@pytest.mark.parametrize("headers", [{}, OPENMETRICS])
def test_gzip_is_one_member_equal_to_the_plain_body(served, headers) -> None:
    url, _, _ = served
    plain = get(url, {**headers, "Accept-Encoding": "identity"}).content
    raw = requests.get(
        url + "/metrics", headers={**headers, "Accept-Encoding": "gzip"}, timeout=5, stream=True
    ).raw.read(decode_content=False)
    single = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert single.decompress(raw) == plain  # the same rendering: within one second
    assert single.eof
    assert single.unused_data == b""
    assert gzip.decompress(raw) == plain  # checks the CRC-32 and length of the trailer


def test_the_collector_runs_at_most_once_a_second_per_format(served) -> None:
    url, process, clock = served
    for _ in range(5):
        get(url)
    assert process.renders == 1
    get(url, OPENMETRICS)
    assert process.renders == 2
    clock[0] += 0.99
    get(url)
    assert process.renders == 2
    clock[0] += 0.02
    get(url)
    assert process.renders == 3


def test_only_process_families_come_from_the_collector() -> None:
    text = ProcessFamilies().part(openmetrics=False).plain().decode()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names
    assert all(name.startswith(PROCESS_PREFIX) for name in names)
