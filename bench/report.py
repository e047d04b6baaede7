"""The benchmark's figures: medians and p99s that need enough samples, and the tables."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Result

FORMATS = {
    "text": {"Accept": "text/plain"},
    "gzip": {"Accept": "text/plain", "Accept-Encoding": "gzip"},
    "openmetrics": {"Accept": "application/openmetrics-text; version=1.0.0"},
}
WARM_POLLS = 5  # full polls of the unchanged fleet after the first, for their CPU
WINDOWS = ("steady", "changing")  # full polls of an unchanged fleet / of a changing one
WINDOW_SECONDS = 8.0  # at least this long, so that several polls (every 2 s) overlap
WINDOW_MOST = 180.0  # ...and at most this long while collecting enough samples
UNCOMPRESSED_EVERY = 10  # during polls, text and OpenMetrics scrape once per 10 rounds
MIN_MEDIAN = 5  # fewer samples than these and the figure says "too few"
MIN_P99 = 100
NAIVE_MOST = 10_000  # render-on-scrape takes many seconds per scrape above this


def median(values: list[float]) -> float:
    """The median, or NaN when there are fewer than MIN_MEDIAN samples."""
    return statistics.median(values) if len(values) >= MIN_MEDIAN else float("nan")


def p99(values: list[float]) -> float:
    """The 99th percentile, or NaN when there are fewer than MIN_P99 samples."""
    if len(values) < MIN_P99:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def ms(seconds: float, n: int | None = None) -> str:
    if math.isnan(seconds):
        return "too few" if n is None else f"too few ({n})"
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _ratio(a: float, b: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) else f"{a / b:.{digits}f}x"


def spread(values: list[float], unit=None) -> str:
    """min / median / max of a few figures (each already a full measurement)."""
    unit = unit or ms
    if not values:
        return "none"
    return " / ".join(unit(v) for v in (min(values), statistics.median(values), max(values)))


def warm_cpu(r: Result) -> float:
    return statistics.median(p["cpu"] for p in r.warm)


def busy_ratio(r: Result, window: str, fmt: str = "gzip") -> float:
    """p99 of ours over p99 of the floor, scraped in turn in the same window."""
    return p99(r.busy[window][fmt]) / p99(r.busy_static[window][fmt])


def table(results: list[Result]) -> str:
    """The results as a Markdown table, one column per fleet size."""
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, cell) -> None:
        rows.append((label, [cell(r) for r in results]))

    for f in FORMATS:
        row(
            f"scrape {f}: median / p99",
            lambda r, f=f: f"{ms(median(r.ours[f]))} / {ms(p99(r.ours[f]), len(r.ours[f]))}",
        )
    for f in FORMATS:
        row(f"response bytes, {f}", lambda r, f=f: size(r.sizes[f]))
    for f in FORMATS:
        row(
            f"static floor, {f}: median (ours / floor)",
            lambda r, f=f: (
                f"{ms(median(r.static[f]))} ({_ratio(median(r.ours[f]), median(r.static[f]))})"
            ),
        )
    for f in FORMATS:
        row(
            f"render-on-scrape, {f}: median (it / ours)",
            lambda r, f=f: (
                f"{ms(median(r.naive[f]), len(r.naive[f]))} "
                f"({_ratio(median(r.naive[f]), median(r.ours[f]), 0)})"
                if r.naive
                else f"not run above {NAIVE_MOST:,}"
            ),
        )
    for w in WINDOWS:
        for f in FORMATS:
            row(
                f"scrape {f} during {w} full polls: median / p99 (p99 / floor's p99)",
                lambda r, f=f, w=w: (
                    f"{ms(median(r.busy[w][f]), len(r.busy[w][f]))} / "
                    f"{ms(p99(r.busy[w][f]), len(r.busy[w][f]))} "
                    f"({_ratio(p99(r.busy[w][f]), p99(r.busy_static[w][f]))})"
                ),
            )
        row(
            f"{w} window: polls, their CPU min / median / max, token-bucket wait",
            lambda r, w=w: (
                f"{len(r.windows[w])}; {spread([p['cpu'] for p in r.windows[w]])}; "
                f"{sum(p['throttled'] for p in r.windows[w]):.1f} s"
            ),
        )
    row("first full poll: wall / CPU", lambda r: f"{ms(r.full['wall'])} / {ms(r.full['cpu'])}")
    row(
        f"warm full poll, unchanged fleet: CPU min / median / max ({WARM_POLLS} polls)",
        lambda r: spread([p["cpu"] for p in r.warm]),
    )
    row(
        "warm full poll: wall min / median / max",
        lambda r: spread([p["wall"] for p in r.warm]),
    )
    row(
        "full poll: requests (per region)",
        lambda r: f"{r.full['requests']} ({r.full['requests'] / 3:g})",
    )
    if any(r.rackconnect_v3 for r in results):
        row(
            "full poll: RackConnect v3.0 requests (per region)",
            lambda r: f"{r.full.get('requests_v3', 0)} ({r.full.get('requests_v3', 0) / 3:g})",
        )
    row(
        "incremental poll, nothing changed: wall / CPU",
        lambda r: f"{ms(r.delta['wall'])} / {ms(r.delta['cpu'])}",
    )
    row(
        "incremental poll, nothing changed: requests (per region)",
        lambda r: f"{r.delta['requests']} ({r.delta['requests'] / 3:g})",
    )
    row("exporter peak RSS (at start)", lambda r: f"{size(r.rss_peak)} ({size(r.rss_start)})")
    alike = [r for r in results if r.rackconnect_v3 == results[-1].rackconnect_v3]
    if len(alike) > 1:
        a, b = alike[-2], alike[-1]
        per = b.servers - a.servers
        growth = (
            f"RSS {(b.rss_peak - a.rss_peak) / per / 1024:.1f} KiB, "
            f"text {(b.sizes['text'] - a.sizes['text']) / per / 1024:.2f} KiB, "
            f"gzip {(b.sizes['gzip'] - a.sizes['gzip']) / per:.0f} B, "
            f"warm-poll CPU {(warm_cpu(b) - warm_cpu(a)) / per * 1e6:.1f} us, "
            f"text scrape {(median(b.ours['text']) - median(a.ours['text'])) / per * 1e6:.2f} us"
        )
        label = f"growth per server, {a.servers:,} to {b.servers:,}"
        rows.append((label, [""] * (len(results) - 1) + [growth]))
    header = "| | " + " | ".join(_column(r) for r in results) + " |"
    lines = [header, "| --- |" + " --- |" * len(results)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


def _column(r: Result) -> str:
    return f"{r.servers:,} servers" + (", RackConnect v3.0" if r.rackconnect_v3 else "")


def targets(r: Result) -> list[tuple[bool, str]]:
    """The goals for this fleet size on a 2-core machine, and whether they were met."""
    out = []
    if r.servers == 10_000:
        cpu = warm_cpu(r)
        out.append((cpu <= 0.17, f"warm full poll: at most 0.17 s of CPU ({cpu:.3f} s median)"))
        out.append((r.rss_peak <= 100e6, f"peak RSS at most 100 MB ({r.rss_peak / 1e6:.0f} MB)"))
        ratio = busy_ratio(r, "steady")
        out.append(
            (
                ratio <= 1.5,
                f"gzip scrape p99 during full polls at most 1.5x the floor's ({ratio:.2f}x)",
            )
        )
    elif r.servers == 50_000:
        out.append((r.rss_peak <= 300e6, f"peak RSS at most 300 MB ({r.rss_peak / 1e6:.0f} MB)"))
    return out


def across(runs: list[Result]) -> list[str]:
    """min / median / max over the runs of one size, for the figures the goals name."""
    return [
        f"- warm full poll CPU (each run's median): {spread([warm_cpu(r) for r in runs])}",
        f"- peak RSS: {spread([r.rss_peak for r in runs], size)}",
        "- gzip p99 during steady polls / floor's: "
        + spread([busy_ratio(r, "steady") for r in runs], lambda v: f"{v:.2f}x"),
        "- gzip p99 during changing polls / floor's: "
        + spread([busy_ratio(r, "changing") for r in runs], lambda v: f"{v:.2f}x"),
        f"- first full poll CPU: {spread([r.full['cpu'] for r in runs])}",
    ]


V3_MOST = 1.5  # with RackConnect v3.0, warm poll CPU and peak RSS at most this times without


def compare_v3(without: list[Result], with_v3: list[Result]) -> list[tuple[bool | None, str]]:
    """Warm poll CPU, peak RSS and the steady gzip p99 ratio with v3.0 against without,
    each the median of its runs; the first two are goals (at most V3_MOST times)."""

    def mid(runs: list[Result], figure) -> float:
        return statistics.median(figure(r) for r in runs)

    out: list[tuple[bool | None, str]] = []
    for name, figure, unit in (
        ("warm full poll CPU", warm_cpu, ms),
        ("peak RSS", lambda r: float(r.rss_peak), size),
    ):
        a, b = mid(without, figure), mid(with_v3, figure)
        out.append(
            (
                b <= V3_MOST * a,
                f"{name} with v3.0 at most {V3_MOST}x without: "
                f"{unit(b)} against {unit(a)} ({_ratio(b, a)})",
            )
        )
    a = mid(without, lambda r: busy_ratio(r, "steady"))
    b = mid(with_v3, lambda r: busy_ratio(r, "steady"))
    out.append(
        (None, f"gzip p99 during steady polls / floor's: {b:.2f}x with v3.0, {a:.2f}x without")
    )
    return out
