"""What the process_* families add to a scrape: ``python -m bench.process_cost``.

Prints the cost of one collector run (once a second at most, per format) and the cost a
scrape pays while the rendering is fresh, for each form of the body.
"""

from __future__ import annotations

import timeit

from exporter.exposition.gzipparts import Body
from exporter.exposition.process import ProcessFamilies


def per_call(statement, number: int) -> float:
    """Best of five runs, in seconds per call."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number


def main() -> None:
    """Print one line per measured step."""
    body = Body([b"rackconnect_up 1\n" * 50_000])
    for openmetrics in (False, True):
        fmt = "OpenMetrics" if openmetrics else "text"
        uncached = ProcessFamilies(max_age=0)
        render = per_call(lambda u=uncached, om=openmetrics: u.part(om), 200)
        cached = ProcessFamilies()
        part = cached.part(openmetrics)
        hit = per_call(lambda c=cached, om=openmetrics: c.part(om), 100_000)
        plain = per_call(lambda p=part: body.prepended(p, False), 100_000)
        gzip = per_call(lambda p=part: body.prepended(p, True), 100_000)
        print(
            f"{fmt:12} collector run {render * 1e6:7.1f} us (at most once a second); "
            f"per scrape: cached part {hit * 1e9:5.0f} ns + plain body {plain * 1e9:4.0f} ns"
            f" / gzip body {gzip * 1e9:4.0f} ns"
        )


if __name__ == "__main__":
    main()
