"""Retry policies: the cloud APIs' (transient failures tried again) and none at all.

A policy is given to ``ApiClient``; the whole-request deadline applies whichever it is.
"""

from __future__ import annotations

from typing import Any

from urllib3.util import Retry

RETRY_STATUSES = frozenset({500, 502, 503, 504})


class _CappedRetry(Retry):
    """urllib3 Retry whose Retry-After sleep is capped, so one answer cannot stall a poll."""

    MAX_SLEEP = 10.0
    # 413 and 429 are not retried within the poll: the region's next poll waits instead.
    RETRY_AFTER_STATUS_CODES = frozenset({503})

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.MAX_SLEEP)


def cloud_retry() -> Retry:
    """The cloud APIs' policy: transient failures are tried again, within the poll."""
    return _CappedRetry(
        total=2,
        read=1,  # a read timeout costs a whole --poll.timeout: retry it only once
        backoff_factor=0.5,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # the identity POST is safe to repeat
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


# One attempt per request, for an upstream that counts every request against a limit.
NO_RETRY = Retry(total=0, read=False, raise_on_status=False, raise_on_redirect=False)
