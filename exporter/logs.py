"""Logging in logfmt or JSON, with every known secret masked as a last line of defence."""

from __future__ import annotations

import json
import logging
import re
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
URL_PASSWORD_MASK = "***"
# Shorter secrets are still used to authenticate, but masking them would garble other text.
MIN_SECRET_LENGTH = 8
MAX_CAUSES = 5  # links of an exception chain shown after the exception itself

# The password of a URL's user information: scheme://user:password@host
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s]*@")
# What JSON leaves raw but a terminal or a line-based reader must not see raw:
# DEL, the C1 controls and the Unicode line and paragraph separators.
_UNESCAPED_BY_JSON = re.compile("[\x7f-\x9f\u2028\u2029]")
_LOGFMT_QUOTE = re.compile('[\\s="\\\\\x00-\x1f\x7f-\x9f\u2028\u2029]')

logger = logging.getLogger("rackconnect_exporter")


def format_exception(exc: BaseException) -> str:
    """``Type: message``, then ``caused by: Type: message`` for each cause or context."""
    parts: list[str] = []
    seen: set[int] = set()
    previous = None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) <= MAX_CAUSES:
        seen.add(id(current))
        text = str(current)
        if text != previous:  # requests repeats urllib3's message: say it once
            parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        previous = text
        cause = current.__cause__
        if cause is None and not current.__suppress_context__:
            cause = current.__context__
        current = cause
    return " caused by: ".join(parts)


def mask_url_passwords(text: str) -> str:
    """Replace the password of every ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(rf"\1:{URL_PASSWORD_MASK}@", text)


def _escape(encoded: str) -> str:
    """JSON text with DEL, C1 controls and line separators escaped too."""
    return _UNESCAPED_BY_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


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
        fields["err"] = format_exception(record.exc_info[1])
    return fields


def _logfmt_value(text: str) -> str:
    if text and not _LOGFMT_QUOTE.search(text):
        return text
    return _escape(json.dumps(text, ensure_ascii=False))


def _secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """Matches each secret as a whole value: never as part of a longer word."""
    alternatives = []
    for secret in sorted(secrets, key=len, reverse=True):
        before = r"(?<!\w)" if re.match(r"\w", secret) else ""
        after = r"(?!\w)" if re.search(r"\w$", secret) else ""
        alternatives.append(before + re.escape(secret) + after)
    return re.compile("|".join(alternatives)) if alternatives else None


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__()
        self._json = fmt == "json"
        self.secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these secrets too; those shorter than MIN_SECRET_LENGTH are left out."""
        self.secrets |= {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self._pattern = _secret_pattern(self.secrets)

    def _clean(self, value: object) -> str:
        text = mask_url_passwords(str(value))
        return self._pattern.sub(MASK, text) if self._pattern else text

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if self._json:
            clean = {
                k: v if v is None or isinstance(v, bool | int | float) else self._clean(v)
                for k, v in fields.items()
            }
            return _escape(json.dumps(clean, ensure_ascii=False))
        return " ".join(f"{k}={_logfmt_value(self._clean(v))}" for k, v in fields.items())


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
    """Mask more secret strings in every log line from now on (whole values, 8+ characters)."""
    for handler in logger.handlers:
        if isinstance(handler.formatter, _Formatter):
            handler.formatter.add(secrets)
