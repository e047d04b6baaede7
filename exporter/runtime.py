"""Interpreter settings for a process that polls in the background and serves scrapes."""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL = 0.0002  # seconds a busy thread keeps the GIL while another waits for it


def tune_runtime() -> None:
    """Keep scrapes quick while a poll is busy decoding and rendering.

    A poll holds the GIL for long stretches, and a scrape needs it a few times (to read
    the request, to send each part); a shorter switch interval lets the HTTP threads in
    after 0.2 ms instead of 5 ms, each time. A poll of a large fleet also allocates
    hundreds of thousands of short-lived objects; fewer young collections keep it from
    scanning the long-lived fleet over and over.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(50_000, 20, 100)
