"""The HTTP client every upstream call goes through: retries, timeouts, errors, counting."""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Required, TypedDict, Unpack
from urllib.parse import urlsplit

import msgspec
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util import Retry

from exporter import __version__
from exporter.errors import (
    AUTH,
    BAD_RESPONSE,
    CONNECTION,
    HTTP_ERROR,
    RATE_LIMITED,
    TIMEOUT,
    UpstreamError,
)
from exporter.model import parse_timestamp
from exporter.rackspace.deadline import (
    LARGE_BODY,
    POOL_CLASSES,
    WATCHDOG,
    Attempt,
    deadlines,
    decode_slot,
)
from exporter.rackspace.repeat import PreparedGets, body_digest
from exporter.rackspace.retry import cloud_retry

USER_AGENT = f"rackconnect-exporter/{__version__}"

# Upstream rate limiting answers 413 (Repose's default) or 429.
RATE_LIMIT_STATUSES = frozenset({413, 429})
OK_STATUSES = frozenset({200, 203})  # 203: a proxy's answer, Nova's document all the same
# Refuse a response body above this size (a full page of 1,000 servers is a few MiB).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 256 * 1024
DECODE_WAIT = 10.0  # seconds a large body waits for a decode slot before giving up

OnResponse = Callable[[str, str, int], None]
"""Called as ``on_response(api, region, status_code)`` for every HTTP answer, retries included."""


@dataclass
class Answer:
    """A response and its body as read: the chunks, not yet joined, and their digest.

    A caller that has seen this very body before (same digest) can skip joining and
    decoding it; ``loaded()`` gives the usual response with its ``content``. The digest
    is only compared within this process (see ``repeat.body_digest``).
    """

    response: requests.Response
    chunks: list[bytes]
    digest: bytes

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def join(self) -> bytes:
        """The body in one piece; the chunks are let go."""
        body, self.chunks = b"".join(self.chunks), []
        return body

    def loaded(self) -> requests.Response:
        """The response with the body joined into ``content``."""
        self.response._content = self.join()
        return self.response


def parse_retry_after(
    headers: Mapping[str, str], body: object = None, clock: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or HTTP date) or an overLimit body.

    The body key is ``retryAfter`` in some upstream documents and ``retryAt`` in others.
    Dates are counted from ``clock()`` (epoch seconds).
    """
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - clock())
    if isinstance(body, dict):
        for fault in body.values():
            if isinstance(fault, dict):
                for key in ("retryAfter", "retryAt"):
                    at = parse_timestamp(fault.get(key))
                    if at is not None:
                        return max(0.0, at - clock())
    return None


def fault_name(body: object) -> str:
    """The root key of an upstream fault document (``itemNotFound``, ``overLimit``...)."""
    if isinstance(body, dict) and len(body) == 1:
        (name,) = body
        return str(name)[:64]
    return "no fault body"


class RequestOptions(TypedDict, total=False):
    """What a request says besides its method and URL: ``api`` and ``region`` are counted."""

    api: Required[str]
    region: Required[str]
    headers: Mapping[str, str] | None
    params: Mapping[str, Any] | None
    json_body: object


class ApiClient:
    """A ``requests`` session with retries for transient failures and one error family.

    ``retry`` is the retry policy (default ``cloud_retry()``); whatever it is, every attempt
    keeps the whole-request deadline.
    """

    def __init__(
        self,
        timeout: float,
        on_response: OnResponse | None = None,
        throttle: Callable[[], object] | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.timeout = timeout
        self._on_response = on_response or (lambda api, region, code: None)
        self._throttle = throttle
        if retry is None:
            retry = cloud_retry()
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # requests reads the environment (proxies, CA bundle, ~/.netrc) on every request;
        # here it is read once: the CA bundle now, each origin's proxies on first use.
        self.session.trust_env = False
        self.session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self._proxies: dict[str, dict[str, str]] = {}
        self._gets = PreparedGets(self.session)
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        adapter.poolmanager.pool_classes_by_scheme = POOL_CLASSES
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        """Cut off the requests in flight and release pooled connections."""
        WATCHDOG.abort(self)
        self.session.close()

    def request(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> requests.Response:
        """Send one request (with retries); return the final response whatever its status."""
        return self.fetch(method, url, **options).loaded()

    def fetch(self, method: str, url: str, **options: Unpack[RequestOptions]) -> Answer:
        """``request``, with the body left in the chunks it was read in, and their digest.

        Each attempt (connect, headers and body together) must end within ``timeout``
        seconds, or it is cut off; the body is read here, at most MAX_RESPONSE_BYTES of it
        (after decompression): a longer one is refused.
        """
        if self._throttle is not None and method == "GET":
            self._throttle()
        api, region = options["api"], options["region"]
        where = f"{method} {strip_query(url)}"
        with deadlines(self.timeout, self) as attempts:
            try:
                response = self._send(method, url, options)
                try:
                    chunks, digest = self._read_body(
                        response, where, attempts[-1] if attempts else None
                    )
                finally:
                    response.close()
            except requests.RequestException as exc:
                if attempts and attempts[-1].expired:
                    raise UpstreamError(TIMEOUT, f"{where}: not answered in time") from exc
                raise _request_error(exc, where) from exc
        retries = getattr(response.raw, "retries", None)
        for attempt in getattr(retries, "history", ()) or ():
            if attempt.status is not None:
                self._on_response(api, region, attempt.status)
        self._on_response(api, region, response.status_code)
        return Answer(response, chunks, digest)

    def _send(self, method: str, url: str, options: RequestOptions) -> requests.Response:
        headers, prepared = options.get("headers") or {}, None
        if method == "GET" and options.get("json_body") is None:
            prepared = self._gets.get(url, options.get("params"), headers)
        if prepared is None:
            return self.session.request(
                method,
                url,
                headers=dict(headers),
                params=options.get("params"),
                json=options.get("json_body"),
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
                proxies=self._proxies_for(url),
            )
        return self.session.send(  # as ``request`` would send it: the session's settings
            prepared,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
            proxies={**self.session.proxies, **self._proxies_for(url)},
            verify=self.session.verify,
            cert=self.session.cert,
        )

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The proxies HTTP(S)_PROXY and NO_PROXY give for the URL's origin."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        found = self._proxies.get(origin)
        if found is None:
            found = self._proxies[origin] = requests.utils.get_environ_proxies(origin)
        return dict(found)

    def _read_body(
        self, response: requests.Response, where: str, attempt: Attempt | None
    ) -> tuple[list[bytes], bytes]:
        limit = MAX_RESPONSE_BYTES
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise UpstreamError(BAD_RESPONSE, f"{where}: response larger than {limit} bytes")
        # The watchdog's clock (monotonic): it cuts the attempt off at this deadline.
        deadline = attempt.deadline if attempt is not None else time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        with contextlib.ExitStack() as stack:
            for chunk in response.iter_content(CHUNK_BYTES):
                # A large body is read and decoded within the process-wide budget.
                large = size <= LARGE_BODY < size + len(chunk)
                if large and not stack.enter_context(decode_slot(deadline - time.monotonic())):
                    raise UpstreamError(TIMEOUT, f"{where}: no memory budget in time")
                size += len(chunk)
                if size > limit:
                    raise UpstreamError(
                        BAD_RESPONSE, f"{where}: response larger than {limit} bytes"
                    )
                chunks.append(chunk)
            if attempt is not None and attempt.expired:
                raise UpstreamError(TIMEOUT, f"{where}: body not received within the timeout")
            return chunks, body_digest(chunks)


def loads(data: bytes) -> Any:
    """Decode JSON: msgspec (several times faster on large documents), else the stdlib.

    msgspec refuses a few things the stdlib accepts (lone surrogate escapes, NaN);
    those documents are decoded again by the stdlib.
    """
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return json.loads(data)


def _request_error(exc: requests.RequestException, where: str) -> UpstreamError:
    """The UpstreamError for an exception from requests."""
    if isinstance(exc, requests.Timeout):
        return UpstreamError(TIMEOUT, f"{where}: timed out")
    if isinstance(exc, requests.exceptions.RetryError):
        return UpstreamError(HTTP_ERROR, f"{where}: retries exhausted")
    if isinstance(exc, requests.ConnectionError) and exc.args:
        # Timeouts that exhausted the retries arrive wrapped in a ConnectionError, with
        # the urllib3 error as the reason (or, while reading a body, as the argument).
        cause = getattr(exc.args[0], "reason", exc.args[0])
        # urllib3's NewConnectionError (connection refused) subclasses ConnectTimeoutError.
        if isinstance(cause, ReadTimeoutError | ConnectTimeoutError) and not isinstance(
            cause, NewConnectionError
        ):
            return UpstreamError(TIMEOUT, f"{where}: timed out")
    return UpstreamError(CONNECTION, f"{where}: {type(exc).__name__}")


def decode_json(response: requests.Response, method: str, url: str) -> Any:
    """Decode a JSON body, raising a bad_response UpstreamError when it is not JSON.

    A large body is decoded within the process-wide budget (DECODE_SLOTS).
    """
    content = response.content
    try:
        if len(content) <= LARGE_BODY:
            return loads(content)
        with decode_slot(DECODE_WAIT) as acquired:
            if not acquired:
                raise UpstreamError(TIMEOUT, f"{method} {strip_query(url)}: no memory budget")
            return loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamError(
            BAD_RESPONSE,
            f"{method} {strip_query(url)}: body is not valid JSON",
            response.status_code,
        ) from exc


def check_status(
    response: requests.Response,
    method: str,
    url: str,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raise the right UpstreamError for a non-success answer (``clock`` dates Retry-After)."""
    code = response.status_code
    if code in OK_STATUSES:
        return
    body: object
    try:
        body = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    where = f"{method} {strip_query(url)}: HTTP {code} ({fault_name(body)})"
    if code in RATE_LIMIT_STATUSES:
        raise UpstreamError(
            RATE_LIMITED, where, code, parse_retry_after(response.headers, body, clock)
        )
    if code in (401, 403):
        raise UpstreamError(AUTH, where, code)
    raise UpstreamError(HTTP_ERROR, where, code)


def strip_query(url: str) -> str:
    """The URL without its query string, for messages."""
    return url.split("?", 1)[0]
