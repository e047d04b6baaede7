"""Logging in logfmt or JSON, with every known secret masked as a last line of defence."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
MASK = "<secret>"

logger = logging.getLogger("rackconnect_exporter")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    fields: dict[str, object] = {
        "ts": f"{ts}.{int(record.msecs):03d}Z",
        "level": "warn" if record.levelno == logging.WARNING else record.levelname.lower(),
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[1] is not None:
        fields["err"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    return fields


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__()
        self._json = fmt == "json"
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if self._json:
            line = json.dumps(fields, ensure_ascii=False, default=str)
        else:
            line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())
        for secret in self.secrets:
            line = line.replace(secret, MASK)
        return line


def setup(
    level: str = "info", fmt: str = "logfmt", secrets: Iterable[str] = (), stream=None
) -> None:
    """Send the exporter's log lines to ``stream`` (stderr) at ``level`` in ``fmt``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(fmt, secrets))
    logger.handlers[:] = [handler]
    logger.setLevel(LEVELS[level])
    logger.propagate = False
    # urllib3 reports each retry as a warning of its own; the poller already logs the
    # outcome once, so its messages are shown in the same format, and only for debugging.
    library = logging.getLogger("urllib3")
    library.handlers[:] = [handler]
    library.setLevel(logging.DEBUG if LEVELS[level] <= logging.DEBUG else logging.ERROR)
    library.propagate = False


def add_secrets(secrets: Iterable[str]) -> None:
    """Mask more secret strings in every log line from now on."""
    for handler in logger.handlers:
        if isinstance(handler.formatter, _Formatter):
            merged = set(handler.formatter.secrets) | {s for s in secrets if s}
            handler.formatter.secrets = sorted(merged, key=len, reverse=True)
