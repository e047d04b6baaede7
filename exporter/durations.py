"""Go-style durations (``500ms``, ``30s``, ``1m30s``, ``2h``): parsed into seconds and back."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Parse a Go-style duration (``500ms``, ``30s``, ``1m30s``, ``2h``, or ``0``) into seconds.

    Raises ValueError with a message that quotes the bad value.
    """
    value = text.strip()
    if value == "0":
        return 0.0
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise ValueError(f"invalid duration {text!r} (use e.g. 500ms, 30s, 5m, 1h)")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds as a short Go-style duration (the inverse of parse_duration)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
