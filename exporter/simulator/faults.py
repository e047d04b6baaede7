"""Injected faults: what can go wrong between a client and the upstream APIs."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields

KINDS = (
    "status",
    "delay",
    "reset",
    "malformed_json",
    "truncated",
    "missing_key",
    "wrong_types",
    "loop_next",
    "rate_limit",
    "unauthorized",
    "trickle",
    "skew_date",
    "next_without_since",
    "gzip_bomb",
)
APIS = ("identity", "identity_v1", "servers", "servers_v1", "rackconnect", "rackconnect_v3")
WRONG_TYPE_VARIANTS = (
    "servers_object",
    "metadata_list",
    "id_int",
    "name_null",
    "created_garbage",
    "catalog_object",
    "token_int",
    "expires_garbage",
)


@dataclass(frozen=True)
class Fault:
    """A fault injected into matching requests.

    A request matches when every given selector matches: ``api`` (one of APIS), ``region``
    (upper case; first-gen servers are "GLOBAL"), ``account`` (name), ``path_contains``,
    ``method``. ``count`` is how many matching requests it affects (None: until removed).

    Per kind: ``status`` uses ``status`` (default 500); ``delay`` sleeps ``seconds``;
    ``wrong_types`` picks ``variant`` (WRONG_TYPE_VARIANTS; default servers_object for
    servers, catalog_object for identity); ``rate_limit`` answers ``status`` (413 by
    default, or 429) with ``Retry-After`` per ``retry_after_format`` ("http-date" or
    "seconds"), ``retry_after`` seconds ahead, and the body key ``body_key`` ("retryAfter"
    or "retryAt"); ``trickle`` sends the body at ``rate`` bytes a second; ``skew_date``
    dates the answer (its ``Date`` header) ``seconds`` ahead of the simulator's clock;
    ``next_without_since`` drops ``changes-since`` from the next links of a listing;
    ``gzip_bomb`` answers 200 with a gzip body of a few KiB that inflates to 48 MiB.
    """

    kind: str
    api: str | None = None
    region: str | None = None
    account: str | None = None
    path_contains: str | None = None
    method: str | None = None
    count: int | None = None
    status: int | None = None
    seconds: float = 0.0
    variant: str | None = None
    retry_after: float = 2.0
    retry_after_format: str = "http-date"
    body_key: str = "retryAfter"
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.api is not None and self.api not in APIS:
            raise ValueError(f"unknown api {self.api!r}; one of {', '.join(APIS)}")
        if self.region is not None:
            object.__setattr__(self, "region", self.region.upper())
        if self.method is not None:
            object.__setattr__(self, "method", self.method.upper())
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise ValueError("count must be a positive integer or null")
        if self.status is not None and (
            not isinstance(self.status, int) or not 100 <= self.status <= 599
        ):
            raise ValueError(f"status must be an HTTP status code, not {self.status!r}")
        if not isinstance(self.seconds, int | float) or self.seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        if not isinstance(self.rate, int | float) or self.rate <= 0:
            raise ValueError("rate must be a positive number of bytes a second")
        if not isinstance(self.retry_after, int | float) or self.retry_after < 0:
            raise ValueError("retry_after must be a non-negative number")
        if self.variant is not None and self.variant not in WRONG_TYPE_VARIANTS:
            raise ValueError(
                f"unknown variant {self.variant!r}; one of {', '.join(WRONG_TYPE_VARIANTS)}"
            )
        if self.retry_after_format not in ("http-date", "seconds"):
            raise ValueError("retry_after_format must be 'http-date' or 'seconds'")
        if self.body_key not in ("retryAfter", "retryAt"):
            raise ValueError("body_key must be 'retryAfter' or 'retryAt'")

    @classmethod
    def from_dict(cls, data: object) -> Fault:
        """Build from JSON, rejecting unknown fields with a clear message."""
        if not isinstance(data, dict):
            raise ValueError("fault must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        if "kind" not in data:
            raise ValueError("fault needs a 'kind'")
        return cls(**data)

    def matches(
        self, api: str, method: str, path: str, account: str | None, region: str | None
    ) -> bool:
        """Whether this fault's selectors match a request."""
        return (
            (self.api is None or self.api == api)
            and (self.method is None or self.method == method)
            and (self.region is None or self.region == region)
            and (self.account is None or self.account == account)
            and (self.path_contains is None or self.path_contains in path)
        )


class FaultSet:
    """The active faults, in the order they were added, with their remaining counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list] = {}
        self._next = 1

    def add(self, fault: Fault) -> str:
        """Activate a fault; returns its id."""
        with self._lock:
            fid = f"f{self._next}"
            self._next += 1
            self._faults[fid] = [fault, fault.count]
            return fid

    def remove(self, fid: str) -> None:
        """Deactivate one fault; KeyError when unknown."""
        with self._lock:
            del self._faults[fid]

    def clear(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self._faults.clear()

    def listing(self) -> list[dict]:
        """Active faults as JSON-ready dicts, with ids and remaining counts."""
        with self._lock:
            return [
                {"id": fid, **asdict(f), "remaining": left}
                for fid, (f, left) in self._faults.items()
            ]

    def take(
        self, api: str, method: str, path: str, account: str | None, region: str | None
    ) -> tuple[float, Fault | None]:
        """Consume the faults that hit this request.

        Returns the total delay of matching delay faults and the first other matching fault.
        """
        delay = 0.0
        chosen: Fault | None = None
        with self._lock:
            for fid, entry in list(self._faults.items()):
                fault, left = entry
                if fault.kind != "delay" and chosen is not None:
                    continue
                if not fault.matches(api, method, path, account, region):
                    continue
                if fault.kind == "delay":
                    delay += fault.seconds
                else:
                    chosen = fault
                if left is not None:
                    if left <= 1:
                        del self._faults[fid]
                    else:
                        entry[1] = left - 1
        return delay, chosen
