"""The ``process_*`` families of prometheus_client's ProcessCollector, rendered once a second.

They are rendered on a private registry that holds only the collector, in both formats,
and kept for ``max_age`` seconds: scrapes in between cost nothing more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.exposition.gzipparts import Part

MAX_AGE = 1.0  # seconds a rendering is reused
_EOF = b"# EOF\n"


class ProcessFamilies:
    """The process families as one compressed Part per format, at most ``max_age`` old."""

    def __init__(
        self,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=registry)
        self._registry = registry
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: dict[bool, tuple[float, Part]] = {}
        self.renders = 0  # how many times the collector ran, for tests

    def part(self, openmetrics: bool) -> Part:
        """The families in the text format or (without ``# EOF``) in OpenMetrics."""
        now = self._clock()
        with self._lock:
            hit = self._cached.get(openmetrics)
            if hit is None or not 0 <= now - hit[0] < self._max_age:
                hit = (now, Part(self._render(openmetrics)))
                self._cached[openmetrics] = hit
                self.renders += 1
            return hit[1]

    def _render(self, openmetrics: bool) -> bytes:
        if openmetrics:
            return generate_openmetrics(self._registry).removesuffix(_EOF)
        return generate_latest(self._registry)
