"""Helpers for tests that read expositions: parse them back and check them with promtool."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition.gzipparts import Part


def inflated(families: tuple[tuple[Part, ...], ...]) -> tuple[tuple[bytes, ...], ...]:
    """A renderer's parts per family and chunk, as their plain bytes."""
    return tuple(tuple(p.plain() for p in chunks) for chunks in families)


def samples(body: bytes, openmetrics: bool = False) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, keyed by (name, labels), parsed by prometheus_client."""
    parse = parse_om if openmetrics else parse_text
    result: dict[tuple[str, frozenset], float] = {}
    for family in parse(body.decode("utf-8")):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in result, f"duplicate series {key}"
            result[key] = sample.value
    return result


def families(body: bytes, openmetrics: bool = False) -> dict[str, str]:
    """Family name -> type."""
    parse = parse_om if openmetrics else parse_text
    return {f.name: f.type for f in parse(body.decode("utf-8"))}


def promtool_check(body: bytes) -> str:
    """Run ``promtool check metrics`` on an exposition; return its output, fail on error."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package prometheus)"
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    return output


def value(parsed: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float | None:
    """The value of the one series with these labels (a subset is enough), or None."""
    wanted = set(labels.items())
    found = [v for (n, lbl), v in parsed.items() if n == name and wanted <= lbl]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} series"
    return found[0] if found else None


def series(parsed: dict[tuple[str, frozenset], float], name: str, **labels: str) -> list[dict]:
    """The label sets of every series of ``name`` matching ``labels``."""
    wanted = set(labels.items())
    return [dict(lbl) for (n, lbl) in parsed if n == name and wanted <= lbl]
