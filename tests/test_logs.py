"""Log lines: URL passwords and secrets masked, control characters escaped, causes kept."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import logs
from exporter.logs import MASK, format_exception, logger, mask_url_passwords

SECRET = "s3cr3t-Api-Key-0123"
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """logfmt lines of the exporter's logger, with SECRET configured."""
    stream = io.StringIO()
    logs.setup("debug", "logfmt", [SECRET], stream=stream)
    yield stream
    logs.setup()


def lines(fmt: str, *records: tuple[str, dict[str, object]], secrets=(SECRET,)) -> list[str]:
    """Log each (msg, extra) in ``fmt``; the lines written."""
    stream = io.StringIO()
    logs.setup("debug", fmt, secrets, stream=stream)
    try:
        for msg, extra in records:
            logger.info(msg, extra=extra)
    finally:
        logs.setup()
    return stream.getvalue().splitlines()


def logfmt_fields(line: str) -> dict[str, str]:
    """key=value pairs of a logfmt line; quoted values are JSON strings."""
    fields = {}
    for key, quoted, bare in re.findall(r'(\w+)=(?:("(?:[^"\\]|\\.)*")|(\S*))', line):
        fields[key] = json.loads(quoted) if quoted else bare
    return fields


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:pw@host/v2.0/", "https://user:***@host/v2.0/"),
        ("http://u:p@ss@h:5000/x", "http://u:***@h:5000/x"),
        ("https://user:pw@host", "https://user:***@host"),
        ("http://host:8080/a@b", "http://host:8080/a@b"),
        ("https://host/v2.0/", "https://host/v2.0/"),
        ("see https://a:b@c/ and https://d:e@f/.", "see https://a:***@c/ and https://d:***@f/."),
    ],
)
def test_url_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url_passwords(url) == masked


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_url_password_is_masked_in_message_and_fields(fmt: str) -> None:
    """A URL's password never reaches a log line, whichever field carries it."""
    url = "https://ops:hunter2-pw@identity.example/v2.0/"
    (line,) = lines(fmt, (f"authenticating at {url}", {"identity_url": url}))
    assert "hunter2-pw" not in line
    assert line.count("https://ops:***@identity.example/v2.0/") == 2


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_secrets_are_masked_as_whole_values_only(fmt: str) -> None:
    """A secret is masked where it stands alone, never inside a longer word."""
    (line,) = lines(
        fmt,
        (f"key={SECRET} other=x{SECRET}y", {"detail": f'{{"apiKey": "{SECRET}"}}'}),
    )
    assert f"x{SECRET}y" in line
    assert line.count(MASK) == 2
    assert line.count(SECRET) == 1


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_a_secret_with_quotes_is_masked_before_escaping(fmt: str) -> None:
    """A password containing quotes or backslashes is masked, not escaped and leaked."""
    password = 'pa"ss\\word!'
    (line,) = lines(fmt, ("login", {"detail": f"password {password}"}), secrets=[password])
    assert "pa" not in line.replace("password", "")
    assert MASK in line


def test_short_secrets_are_not_used_for_masking() -> None:
    """A secret under 8 characters would garble unrelated words: it is not masked."""
    (line,) = lines("logfmt", ("level=warn e", {"k": "ab"}), secrets=["e", "ab"])
    assert MASK not in line
    assert "level=warn e" in logfmt_fields(line)["msg"]


def test_add_secrets_masks_from_then_on(log: io.StringIO) -> None:
    """Secrets added later (after a reload) are masked too; short ones are not."""
    logs.add_secrets(["another-long-secret", "tiny"])
    logger.info("another-long-secret tiny")
    assert logfmt_fields(log.getvalue().splitlines()[-1])["msg"] == f"{MASK} tiny"


@given(st.text())
def test_logfmt_escapes_every_control_character(text: str) -> None:
    """One line per record, no raw control character, and the value reads back unchanged."""
    (line,) = lines("logfmt", ("poll failed", {"region": text}), secrets=())
    assert not RAW_CONTROL.search(line)
    assert logfmt_fields(line)["region"] == text


@given(st.text())
def test_json_escapes_every_control_character(text: str) -> None:
    """JSON lines escape C0, DEL, C1 and line separators too, and parse back unchanged."""
    (line,) = lines("json", (text, {"region": text}), secrets=())
    assert not RAW_CONTROL.search(line)
    parsed = json.loads(line)
    assert (parsed["msg"], parsed["region"]) == (text, text)


def test_region_name_with_terminal_escapes_stays_on_one_line() -> None:
    """A region name from the catalog cannot forge a second log line."""
    evil = "ORD\nts=now level=error msg=forged\x1b[2J\x85"
    (line,) = lines("logfmt", ("poll failed", {"region": evil}), secrets=())
    assert "\\n" in line
    assert "\\u001b" in line
    assert "\\u0085" in line


def raise_chain() -> BaseException:
    """A ConnectionError raised from an OSError, caught while handling a TimeoutError."""
    try:
        try:
            raise TimeoutError("first attempt timed out")
        except TimeoutError:
            try:
                raise OSError("connection refused")
            except OSError as cause:
                raise ConnectionError("GET https://servers/: connection failed") from cause
    except ConnectionError as exc:
        return exc
    raise AssertionError("unreachable")


def test_format_exception_keeps_the_cause_chain() -> None:
    """Explicit causes and implicit contexts are followed, in order."""
    assert format_exception(raise_chain()) == (
        "ConnectionError: GET https://servers/: connection failed"
        " caused by: OSError: connection refused"
        " caused by: TimeoutError: first attempt timed out"
    )


def test_format_exception_edge_cases() -> None:
    """No message, `from None`, repeated messages and cycles."""
    assert format_exception(ValueError()) == "ValueError"
    suppressed = ValueError("bad")  # raise ValueError("bad") from None, in a handler
    suppressed.__context__ = KeyError("k")
    suppressed.__suppress_context__ = True
    assert format_exception(suppressed) == "ValueError: bad"
    inner = OSError("same text")
    outer = ConnectionError("same text")
    outer.__cause__ = inner
    assert format_exception(outer) == "ConnectionError: same text"
    inner.__cause__ = outer  # a cycle ends the chain
    assert format_exception(outer).count("caused by") == 0
    deep = Exception("0")
    for i in range(1, 20):
        new = Exception(str(i))
        new.__cause__ = deep
        deep = new
    assert format_exception(deep).count("caused by") == logs.MAX_CAUSES


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_logged_exception_keeps_its_cause(fmt: str) -> None:
    """err= carries the chain, and the chain's URLs are masked like any other text."""
    stream = io.StringIO()
    logs.setup("debug", fmt, [], stream=stream)
    try:
        try:
            raise OSError("refused by https://u:topsecret@h/")
        except OSError as cause:
            exc = ConnectionError("poll")
            exc.__cause__ = cause
        logger.error("unexpected error while polling", exc_info=exc)
    finally:
        logs.setup()
    (line,) = stream.getvalue().splitlines()
    err = json.loads(line)["err"] if fmt == "json" else logfmt_fields(line)["err"]
    assert err == "ConnectionError: poll caused by: OSError: refused by https://u:***@h/"
