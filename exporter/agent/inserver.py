"""The RackConnect v2.0 in-server API, as a server reads it about itself.

The API (``https://{region}.api.rackconnect.rackspace.com/v1/...``) answers for the
calling server only and allows 30 requests a minute; over that it answers 403. Only the
``automation_status`` JSON key is known from real clients: every other shape is read in
each variant seen (``tasks`` or ``cloud_server_tasks`` with ``name``/``status`` or
``task``/``task_status``; ``gateway_ip`` or ``ip``; features as a list or a flat object).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

import requests

from exporter.agent.budget import RATE_LIMIT, RequestBudget
from exporter.errors import BAD_RESPONSE, RATE_LIMITED, UpstreamError
from exporter.model import FEATURE_KEYS, normalise_automation_status
from exporter.rackspace.client import ApiClient, check_status, strip_query

REQUESTS_PER_POLL = 3  # details, features, gateway
FEATURE_PREFIX = "rackconnect_automation_feature_"


def default_url(region: str) -> str:
    """The in-server API's base URL for a region."""
    return f"https://{region.lower()}.api.rackconnect.rackspace.com"


@dataclass(frozen=True)
class Reading:
    """One poll of the in-server API (status None: the API is not there, as without RackConnect)."""

    status: str | None
    tasks: tuple[tuple[str, str], ...]
    features: tuple[tuple[str, bool], ...]
    gateway_ip: str | None
    server_id: str | None

    @classmethod
    def of_status(cls, status: str | None = None) -> Reading:
        """A reading of the automation status alone (None: nothing read)."""
        return cls(status, (), (), None, None)


def _read(response: requests.Response) -> Any:
    """The body of a successful answer (UpstreamError for any other), decoded by ``_decode``."""
    check_status(response, "GET", response.url)
    return _decode(response)


def _decode(response: requests.Response) -> Any:
    """JSON when the body is JSON, else the trimmed text."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return response.content.decode("utf-8", "replace").strip()


def _first_str(doc: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def parse_status(doc: Any) -> str | None:
    """The automation status from ``{"automation_status": S}``, a JSON string or text."""
    if isinstance(doc, dict):
        value = _first_str(doc, ("automation_status", "status"))
    elif isinstance(doc, str):
        value = doc.strip().strip('"').strip()
    else:
        value = None
    return normalise_automation_status(value) if value else None


def parse_tasks(doc: Any) -> tuple[tuple[str, str], ...]:
    """Task name and status pairs from ``/details``, whatever the array is called."""
    if not isinstance(doc, dict):
        return ()
    items: Any = None
    for key in ("tasks", "cloud_server_tasks", "automation_tasks", "task_statuses"):
        if key in doc:
            items = doc[key]
            break
    else:
        items = next((v for v in doc.values() if isinstance(v, list | dict)), None)
    pairs: list[tuple[str, str]] = []
    if isinstance(items, dict):
        pairs = [(str(k), str(v)) for k, v in items.items() if isinstance(v, str)]
    elif isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                continue
            name = _first_str(item, ("name", "task", "task_name", "description"))
            status = _first_str(item, ("status", "task_status", "state"))
            if name is not None:
                pairs.append((name, status or "UNKNOWN"))
    return tuple(pairs)


def _feature_name(name: str) -> str | None:
    key = name.strip().lower()
    key = key.removeprefix(FEATURE_PREFIX)
    for feature, keys in FEATURE_KEYS.items():
        if key == feature or FEATURE_PREFIX + key in keys:
            return feature
    return None


def parse_features(doc: Any) -> tuple[tuple[str, bool], ...]:
    """Known features and whether each is ENABLED, from a list or a flat object."""
    inner = doc.get("automation_features", doc) if isinstance(doc, dict) else doc
    pairs: list[tuple[str, object]] = []
    if isinstance(inner, dict):
        pairs = list(inner.items())
    elif isinstance(inner, list):
        for item in inner:
            if isinstance(item, dict):
                name = _first_str(item, ("name", "feature"))
                if name is not None:
                    pairs.append((name, item.get("status", item.get("value"))))
    found: dict[str, bool] = {}
    for name, value in pairs:
        feature = _feature_name(str(name))
        if feature is not None and feature not in found:
            found[feature] = value is True or (
                isinstance(value, str) and value.strip().upper() == "ENABLED"
            )
    return tuple((f, found[f]) for f in FEATURE_KEYS if f in found)


def parse_gateway(doc: Any) -> str | None:
    """The gateway IP from ``{"gateway_ip": IP}``, ``{"ip": IP}``, a JSON string or text."""
    if isinstance(doc, dict):
        candidates = [doc.get("gateway_ip"), doc.get("ip"), *doc.values()]
    else:
        candidates = [doc]
    for value in candidates:
        if isinstance(value, str):
            text = value.strip().strip('"').replace(" ", "")
            try:
                return str(ipaddress.ip_address(text))
            except ValueError:
                continue
    return None


def _server_id(*docs: Any) -> str | None:
    for doc in docs:
        if isinstance(doc, dict):
            value = _first_str(doc, ("server_id", "cloud_server_id", "instance_id"))
            if value:
                return value
    return None


class InServerApi:
    """The RackConnect v2.0 in-server API of this server, within the request budget."""

    def __init__(self, base_url: str, client: ApiClient, budget: RequestBudget, region: str):
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._budget = budget
        self._region = region

    def get(self, path: str) -> requests.Response:
        """GET ``/v1/{path}?format=json``; 403 is the rate limit."""
        url = f"{self.base_url}/v1/{path}"
        if not self._budget.take():
            raise UpstreamError(
                RATE_LIMITED, f"GET {url}: holding back to stay under {RATE_LIMIT} requests/minute"
            )
        response = self._client.request(
            "GET", url, api="rackconnect", region=self._region, params={"format": "json"}
        )
        if response.status_code == 403:
            self._budget.block()
            raise UpstreamError(
                RATE_LIMITED, f"GET {strip_query(url)}: HTTP 403 (over the rate limit)", 403
            )
        return response

    def status(self) -> str | None:
        """Only the automation status, in one request."""
        return parse_status(_read(self.get("automation_status")))

    def read(self) -> Reading:
        """One reading: status and tasks, features, gateway."""
        details_doc = _read(self.get("automation_status/details"))
        status = parse_status(details_doc)
        status_doc: Any = None
        if status is None:
            response = self.get("automation_status")
            status_doc = _read(response)
            status = parse_status(status_doc)
            if status is None:
                raise UpstreamError(BAD_RESPONSE, f"GET {response.url}: no automation status")
        features_doc = _read(self.get("automation_features"))
        gateway_response = self.get("gateway_ip")
        gateway: str | None = None
        gateway_doc: Any = None
        if gateway_response.status_code != 404:  # 404: not assigned yet
            gateway_doc = _read(gateway_response)
            gateway = parse_gateway(gateway_doc)
            if gateway is None:
                raise UpstreamError(
                    BAD_RESPONSE, f"GET {strip_query(gateway_response.url)}: no gateway IP"
                )
        return Reading(
            status=status,
            tasks=parse_tasks(details_doc),
            features=parse_features(features_doc),
            gateway_ip=gateway,
            server_id=_server_id(details_doc, status_doc, features_doc, gateway_doc),
        )


_REGION_IN_HOST = re.compile(r"^https?://([a-z]{3})\.api\.rackconnect\.", re.IGNORECASE)


def region_from_url(url: str) -> str | None:
    """``ORD`` from ``https://ord.api.rackconnect.rackspace.com``."""
    match = _REGION_IN_HOST.match(url)
    return match.group(1).upper() if match else None
