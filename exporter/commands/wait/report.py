"""What ``wait`` prints: a line per state change, progress while nothing changes, the outcome.

``--output text`` prints ``<UTC time> <message>``; ``--output json`` prints one JSON
object per line with ``time``, ``elapsed`` (seconds since the start), ``event`` (``state``,
``progress``, ``retry`` or ``outcome``) and the fields of the event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from exporter.durations import format_duration

OUTPUTS = ("text", "json")


def stamp(when: float) -> str:
    """``2024-05-01T12:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


class Reporter:
    """Writes events to ``out``; remembers when it last wrote, for progress lines."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        output: str = "text",
        progress_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}")
        self.out = out
        self.err = err
        self.output = output
        self.progress_interval = progress_interval
        self.clock = clock
        self.wall = wall
        self.started = clock()
        self.last_line = self.started
        self.last_change = self.started

    def elapsed(self) -> float:
        """Seconds since the wait started."""
        return self.clock() - self.started

    def event(self, event: str, message: str, **fields: Any) -> None:
        """One line on stdout."""
        now = self.clock()
        self.last_line = now
        if event == "state":
            fields.setdefault("unchanged_for", round(now - self.last_change, 3))
            self.last_change = now
        if self.output == "json":
            doc = {
                "time": stamp(self.wall()),
                "elapsed": round(now - self.started, 3),
                "event": event,
                **fields,
                "message": message,
            }
            print(json.dumps(doc, sort_keys=False), file=self.out, flush=True)
        else:
            print(f"{stamp(self.wall())} {message}", file=self.out, flush=True)

    def retry(self, message: str) -> None:
        """A transient problem: on stderr in text mode, an event in JSON mode."""
        if self.output == "json":
            self.event("retry", message)
        else:
            print(f"wait: {message}", file=self.err, flush=True)

    def until_progress(self) -> float:
        """Seconds until a progress line is due (0 when it is)."""
        return max(0.0, self.last_line + self.progress_interval - self.clock())

    def progress(self, what: str, waiting: str = "", **fields: Any) -> None:
        """A progress line if one is due; ``waiting`` says for what, when it is known."""
        if self.until_progress() > 0:
            return
        quiet = format_duration(float(round(max(self.clock() - self.last_change, 1.0))))
        on = f" for {waiting}" if waiting else ""
        self.event(
            "progress",
            f"{what}: still waiting{on}, unchanged for {quiet} "
            f"(elapsed {format_duration(float(round(max(self.elapsed(), 1.0))))})",
            **fields,
        )

    def pause(
        self,
        sleep: Callable[[float], None],
        seconds: float,
        what: str,
        waiting: str = "",
        **fields: Any,
    ) -> None:
        """``sleep`` for ``seconds`` in all, waking for each progress line that falls due."""
        left = seconds
        while left > 0:
            chunk = min(left, max(self.until_progress(), 0.001))
            sleep(chunk)
            left -= chunk
            self.progress(what, waiting, **fields)
