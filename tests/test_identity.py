"""The token cache and Retry-After on an injected clock, without HTTP."""

from __future__ import annotations

import email.utils

import requests

from exporter.rackspace.client import parse_retry_after
from exporter.rackspace.identity import Access, TokenCache


class FakeIdentity:
    """Hands out tokens that live ``lifetime`` seconds from the time it is asked at."""

    def __init__(self, lifetime: float = 3600.0) -> None:
        self.lifetime = lifetime
        self.calls: list[float] = []

    def authenticate(self, now: float) -> Access:
        self.calls.append(now)
        return Access(
            token=f"token-{len(self.calls)}",
            expires=now + self.lifetime,
            tenant_id="1",
            roles=frozenset(),
            endpoints={},
        )


def answer(code: int) -> requests.Response:
    response = requests.Response()
    response.status_code = code
    return response


def test_a_token_is_kept_until_shortly_before_it_expires() -> None:
    now = [1000.0]
    identity = FakeIdentity(lifetime=1000.0)
    tokens = TokenCache(identity, clock=lambda: now[0])
    assert tokens.access().token == "token-1"
    now[0] += 850  # refreshed at 90% of a short lifetime
    assert tokens.access().token == "token-1"
    now[0] += 60
    assert tokens.access().token == "token-2"
    assert identity.calls == [1000.0, 1910.0]


def test_a_401_authenticates_again_once() -> None:
    tokens = TokenCache(FakeIdentity(), clock=lambda: 0.0)
    sent: list[str] = []

    def request(token: str) -> requests.Response:
        sent.append(token)
        return answer(401)

    assert tokens.send(request).status_code == 401
    assert sent == ["token-1", "token-2"]


def test_a_token_replaced_meanwhile_is_not_forgotten() -> None:
    tokens = TokenCache(FakeIdentity(), clock=lambda: 0.0)
    old = tokens.access()
    tokens.invalidate(old)
    new = tokens.access()
    tokens.invalidate(old)  # a second 401 on the old token
    assert tokens.access() is new


def test_retry_after_dates_count_from_the_given_clock() -> None:
    date = email.utils.formatdate(2_000_000_000, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, clock=lambda: 1_999_999_970.0) == 30
    body = {"overLimit": {"code": 413, "retryAfter": "2033-05-18T03:33:20Z"}}
    assert parse_retry_after({}, body, clock=lambda: 1_999_999_990.0) == 10
