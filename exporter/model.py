"""Server records and the rules that turn upstream metadata into states (pure, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exporter.model_v3 import (
    POOL_NODE,
    PUBLIC_IP,
    V3_FAILURES,
    Pool,
    PoolNode,
    PublicIp,
    v3_wired,
)

AUTOMATION_STATUS_KEY = "rackconnect_automation_status"
MANAGED_STATUS_KEY = "rax_service_level_automation"
UNPROCESSABLE_REASON_KEY = "rackconnect_unprocessable_reason"

DEPLOYED = "DEPLOYED"
UNPROCESSABLE = "UNPROCESSABLE"
COMPLETE = "Complete"
UNKNOWN = "UNKNOWN"
ACTIVE = "ACTIVE"  # the Nova status a server must have to be ready
ERROR = "ERROR"  # the Nova status of a server that failed to build

AUTOMATION_STATUSES = ("DEPLOYING", DEPLOYED, "FAILED", UNPROCESSABLE, UNKNOWN)
MANAGED_STATUSES = (
    "Pending",
    "In Progress",
    COMPLETE,
    "Build Error",
    "Authentication Error",
    UNKNOWN,
)
AUTOMATION_FAILURES = frozenset({"FAILED", UNPROCESSABLE})
MANAGED_FAILURES = frozenset({"Build Error", "Authentication Error"})

# Feature name -> metadata keys. Upstream spells the public IP key "provison"; the
# correct spelling is read too, in case it is ever fixed.
FEATURE_KEYS: dict[str, tuple[str, ...]] = {
    "configure_network_stack": ("rackconnect_automation_feature_configure_network_stack",),
    "manage_software_firewall": ("rackconnect_automation_feature_manage_software_firewall",),
    "provision_public_ip": (
        "rackconnect_automation_feature_provison_public_ip",
        "rackconnect_automation_feature_provision_public_ip",
    ),
}

MAX_REASON_LENGTH = 200
MAX_METADATA_LABEL_LENGTH = 128  # metadata values as --server.metadata-label labels
MAX_STATUS_LENGTH = 32

NEXT = "next"
FIRST = "first"
FIRST_GEN_REGION = "GLOBAL"  # the region label of first-generation servers


def _fold(value: str) -> str:
    return " ".join(value.split()).casefold()


_AUTOMATION_BY_FOLD = {_fold(s): s for s in AUTOMATION_STATUSES if s != UNKNOWN}
_MANAGED_BY_FOLD = {_fold(s): s for s in MANAGED_STATUSES if s != UNKNOWN}


# Raw value -> normalised status, for the few spellings a fleet actually uses.
_SEEN_AUTOMATION: dict[str, str] = {}
_SEEN_MANAGED: dict[str, str] = {}
_SEEN_LIMIT = 1024
# The few values every record repeats (Nova statuses, feature sets), held once.
_SHARED: dict[object, Any] = {}


def _shared(value: Any) -> Any:
    found = _SHARED.get(value)
    if found is None:
        if len(_SHARED) >= _SEEN_LIMIT:
            return value
        found = _SHARED.setdefault(value, value)
    return found


def _normalise(value: object, by_fold: dict[str, str], seen: dict[str, str]) -> str:
    if not isinstance(value, str):
        return UNKNOWN
    found = seen.get(value)
    if found is None:
        found = by_fold.get(_fold(value), UNKNOWN)
        if len(seen) < _SEEN_LIMIT:
            seen[value] = found
    return found


def normalise_automation_status(value: object) -> str:
    """Map a ``rackconnect_automation_status`` value to one of AUTOMATION_STATUSES."""
    return _normalise(value, _AUTOMATION_BY_FOLD, _SEEN_AUTOMATION)


def normalise_managed_status(value: object) -> str:
    """Map a ``rax_service_level_automation`` value to one of MANAGED_STATUSES."""
    return _normalise(value, _MANAGED_BY_FOLD, _SEEN_MANAGED)


_ISO_FRACTION = re.compile(r"\.\d+")


def parse_timestamp(value: object) -> float | None:
    """Parse an upstream ISO 8601 time (``Z``, offset or naive UTC) into epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 20 and value[-1] == "Z":  # the usual YYYY-MM-DDThh:mm:ssZ
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(_ISO_FRACTION.sub("", text))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _nova_status(value: object) -> str | None:
    # Nova does not regulate its status values: any short word is kept, upper case.
    if not isinstance(value, str) or not value.strip():
        return None
    return _shared(value.strip().upper()[:MAX_STATUS_LENGTH])


def _metadata_labels(
    metadata: dict[str, Any], wanted: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    return tuple(
        (label, str(metadata[key])[:MAX_METADATA_LABEL_LENGTH])
        for label, key in wanted
        if metadata.get(key) is not None
    )


@dataclass(frozen=True, slots=True)
class Server:
    """What the exporter knows about one cloud server, already normalised."""

    id: str
    name: str
    generation: str
    created: float | None
    automation_status: str | None
    features: tuple[tuple[str, bool], ...]
    managed_status: str | None
    unprocessable_reason: str | None
    status: str | None = None  # the Nova status: ACTIVE, BUILD, ERROR, ...
    updated: float | None = None
    labels: tuple[tuple[str, str], ...] = ()  # (label, metadata value) for server_info
    # What only the in-server API tells (the agent): the gateway IP and (task, status)s.
    gateway_ip: str | None = None
    tasks: tuple[tuple[str, str], ...] = ()
    # What the region's RackConnect v3.0 API tells: public IPs and pool memberships.
    public_ips: tuple[PublicIp, ...] = ()
    pool_nodes: tuple[PoolNode, ...] = ()

    @classmethod
    def from_api(
        cls,
        doc: dict[str, Any],
        generation: str = NEXT,
        metadata_labels: tuple[tuple[str, str], ...] = (),
    ) -> Server:
        """Build a record from one server document of the Cloud Servers API.

        ``metadata_labels`` are (label, metadata key) pairs: each key present gives its
        label, the value cut to MAX_METADATA_LABEL_LENGTH characters.
        Raises ValueError when the document has no usable id.
        """
        raw_id = doc.get("id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
            raise ValueError(f"server without a usable id: {raw_id!r}")
        name = doc.get("name")
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
        features: list[tuple[str, bool]] = []
        for feature, keys in FEATURE_KEYS.items():
            for key in keys:
                if key in metadata:
                    value = metadata[key]
                    enabled = value == "ENABLED" or (
                        isinstance(value, str) and value.strip().upper() == "ENABLED"
                    )
                    features.append((feature, enabled))
                    break
        status = metadata.get(AUTOMATION_STATUS_KEY)
        managed = metadata.get(MANAGED_STATUS_KEY)
        reason = metadata.get(UNPROCESSABLE_REASON_KEY)
        return cls(
            id=str(raw_id),
            name=name if isinstance(name, str) else "",
            generation=generation,
            created=parse_timestamp(doc.get("created")) if generation == NEXT else None,
            automation_status=None if status is None else normalise_automation_status(status),
            features=_shared(tuple(features)),
            managed_status=None if managed is None else normalise_managed_status(managed),
            unprocessable_reason=(str(reason)[:MAX_REASON_LENGTH] if reason is not None else None),
            status=_nova_status(doc.get("status")),
            updated=parse_timestamp(doc.get("updated")) if generation == NEXT else None,
            labels=_metadata_labels(metadata, metadata_labels) if metadata_labels else (),
        )

    def nova_done(self) -> bool:
        """True when Nova says ``ACTIVE`` (or the status is unknown, as on the agent)."""
        return self.status is None or self.status == ACTIVE

    def rackconnect_done(self, rackconnect: bool) -> bool:
        """True when RackConnect automation has finished (or does not apply).

        Where RackConnect is not expected, UNPROCESSABLE is the expected answer.
        """
        if self.automation_status is None:
            return not rackconnect
        if self.automation_status == DEPLOYED:
            return True
        return not rackconnect and self.automation_status == UNPROCESSABLE

    def managed_done(self, managed: bool) -> bool:
        """True when Managed Operations automation has finished (or does not apply).

        First-generation servers never report Managed Operations, so it never applies.
        """
        if self.managed_status is None:
            return not managed or self.generation == FIRST
        return self.managed_status == COMPLETE

    def v3_done(self) -> bool:
        """Every RackConnect v3.0 public IP and pool membership ``ACTIVE`` (true for none)."""
        return v3_wired(self.public_ips) and v3_wired(self.pool_nodes)

    def v3_failure(self) -> tuple[str, str, str, str | None] | None:
        """The first failed v3.0 resource: (resource, resource_id, status, status_detail)."""
        for kind, items in ((PUBLIC_IP, self.public_ips), (POOL_NODE, self.pool_nodes)):
            for item in items:
                if item.status in V3_FAILURES:
                    return kind, item.id, item.status, item.status_detail
        return None

    def ready(self, rackconnect: bool, managed: bool, v3: bool = False) -> bool:
        """The rule behind ``rackconnect_server_ready``.

        ``rackconnect`` is whether RackConnect v2.0 is expected in the server's region,
        ``v3`` whether the region has RackConnect v3.0.
        """
        return (
            self.nova_done()
            and self.rackconnect_done(rackconnect)
            and self.managed_done(managed)
            and (not v3 or self.v3_done())
        )

    def failed(self, rackconnect: bool = True) -> bool:
        """True when Nova, either automation or a v3.0 resource reached a terminal failure."""
        rc_failed = self.automation_status in AUTOMATION_FAILURES and not self.rackconnect_done(
            rackconnect
        )
        return (
            self.status == ERROR
            or rc_failed
            or self.managed_status in MANAGED_FAILURES
            or self.v3_failure() is not None
        )


@dataclass(frozen=True)
class RegionView:
    """One account and region, as of the last poll: what scrapes, pages and commands read.

    ``parts`` are the region's per-server families (the store's ``server_families``), then
    its history families, rendered and compressed once: per family, a tuple of chunks.
    """

    region: str
    up: bool = False
    last_success: float | None = None
    duration: float | None = None
    last_error: str | None = None
    servers: tuple[Server, ...] = ()
    parts: tuple[Any, ...] = field(default=(), repr=False, compare=False)
    # RackConnect v3.0: None outside a v3.0 region, else whether its last poll succeeded;
    # the load balancer pools of its last good poll.
    v3_up: bool | None = None
    pools: tuple[Pool, ...] = ()


@dataclass(frozen=True)
class AccountView:
    """One account, as of the last poll of each of its regions."""

    name: str
    tenant_id: str = ""
    rackconnect: bool = False
    managed: bool = False
    known: bool = False  # Identity answered at least once, so tenant and roles are real
    polled: bool = False  # the first poll has finished (successfully or not)
    regions: tuple[RegionView, ...] = ()
    rackconnect_regions: tuple[str, ...] | None = None  # None: every region
    rackconnect_v3_regions: tuple[str, ...] = ()  # the regions with RackConnect v3.0

    def expects_rackconnect(self, region: str) -> bool:
        """Whether RackConnect (v2.0) automation is expected for servers in ``region``."""
        return rackconnect_expected(self.rackconnect, self.rackconnect_regions, region)

    def has_rackconnect_v3(self, region: str) -> bool:
        """Whether ``region`` has RackConnect v3.0 (``Server.ready``'s ``v3``)."""
        return region.upper() in self.rackconnect_v3_regions


def rackconnect_expected(rackconnect: bool, regions: tuple[str, ...] | None, region: str) -> bool:
    """RackConnect applies to the account and, when regions are declared, to ``region``."""
    return rackconnect and (regions is None or region.upper() in regions)


def rackconnect_v2_regions(
    setting: bool | None,
    declared: tuple[str, ...] | None,
    v3: tuple[str, ...],
    regions: Iterable[str],
) -> tuple[str, ...] | None:
    """Of ``regions``, where RackConnect v2.0 is expected (None: every region), as
    ``rackconnect_expected`` takes it.

    v2.0 metadata is not expected in a v3.0 region unless the configuration says so
    (``setting`` is the account's ``rackconnect:``, None for auto; ``declared`` its regions).
    """
    if setting is not None or not v3:
        return declared
    return tuple(r for r in regions if r.upper() not in v3)
