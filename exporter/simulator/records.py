"""One simulated server: its record, the documents Cloud Servers answers, metadata rules."""

from __future__ import annotations

import time
from dataclasses import dataclass

from exporter.simulator.scenario import (
    FEATURE_PREFIX,
    FEATURES,
    MO_STATUS,
    RC_STATUS,
    SimAccount,
)

MAX_METADATA_ITEMS = 40

_PUBLIC_PREFIXES = ("104.130", "162.209", "166.78", "198.61", "23.253", "119.9")

# Status -> (OS-EXT-STS:vm_state, task_state, power_state)
_EXT_STATUS = {
    "ACTIVE": ("active", None, 1),
    "BUILD": ("building", "spawning", 0),
    "ERROR": ("error", None, 0),
    "SHUTOFF": ("stopped", None, 4),
    "DELETED": ("deleted", None, 0),
    "SUSPENDED": ("suspended", None, 4),
    "RESCUE": ("rescued", None, 1),
}


def iso(ts: float) -> str:
    """Cloud Servers timestamp format: ``YYYY-MM-DDThh:mm:ssZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def norm(value: str | None) -> str | None:
    """How automation compares status values: trimmed, upper case."""
    return None if value is None else value.strip().upper()


@dataclass(eq=False, slots=True)
class Server:
    """One server, in either generation."""

    id: str
    account: SimAccount
    region: str
    generation: str
    name: str
    status: str
    progress: int
    created: int
    updated: int
    metadata: dict[str, str]
    raw: bytes
    image: str
    flavor: str
    deleted_at: int | None = None
    gateway_ip: str | None = None
    age: int = 0
    # Created or changed through the control API: churn never deletes it, so a state forced
    # for a demo or a test stays until someone deletes the server on purpose.
    kept: bool = False
    hidden_until: float | None = None  # 404 to reads until then, like a just-created server

    # Addresses and host ids derive from the server's random bytes when rendered.
    @property
    def host_id(self) -> str:
        """A 56-hex-digit host id."""
        return self.raw[16:44].hex()

    @property
    def public_v4(self) -> str:
        """The public IPv4 address."""
        raw = self.raw
        prefix = _PUBLIC_PREFIXES[raw[44] % len(_PUBLIC_PREFIXES)]
        return f"{prefix}.{raw[45]}.{2 + raw[46] % 253}"

    @property
    def public_v6(self) -> str:
        """The public IPv6 address."""
        raw = self.raw
        return f"2001:4800:7810:512:be76:4eff:fe{raw[47]:02x}:{raw[48] << 8 | raw[49]:x}"

    @property
    def private_v4(self) -> str:
        """The ServiceNet address."""
        raw = self.raw
        return f"10.{176 + raw[50] % 16}.{raw[51]}.{2 + raw[52] % 253}"

    @property
    def key_name(self) -> str | None:
        """The SSH key pair name, if any."""
        return f"{self.account.name}-deploy" if self.raw[55] % 3 == 0 else None

    @property
    def disk_config(self) -> str:
        """``OS-DCF:diskConfig``."""
        return "AUTO" if self.raw[56] % 2 else "MANUAL"

    def summary(self) -> dict:
        """A plain copy for ``Simulator.servers()``."""
        return {
            "id": self.id,
            "name": self.name,
            "account": self.account.name,
            "tenant_id": self.account.tenant_id,
            "region": self.region,
            "generation": self.generation,
            "status": self.status,
            "progress": self.progress,
            "created": iso(self.created),
            "updated": iso(self.updated),
            "metadata": dict(self.metadata),
            "image": self.image,
            "flavor": self.flavor,
            "gateway_ip": self.gateway_ip,
            "deleted": self.deleted_at is not None,
        }

    def v2(self, base: str) -> dict:
        """The next-gen (Nova v2) server document."""
        tenant = self.account.tenant_id
        root = f"{base}/{self.region.lower()}/servers"
        vm_state, task_state, power = _EXT_STATUS.get(self.status, ("active", None, 1))
        addresses: dict = {}
        v4 = v6 = ""
        if self.status != "BUILD":
            v4, v6 = self.public_v4, self.public_v6
            addresses = {
                "public": [{"version": 4, "addr": v4}, {"version": 6, "addr": v6}],
                "private": [{"version": 4, "addr": self.private_v4}],
            }
        image: dict | str = ""
        if self.image:
            image = {
                "id": self.image,
                "links": [{"href": f"{root}/{tenant}/images/{self.image}", "rel": "bookmark"}],
            }
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "progress": self.progress,
            "tenant_id": tenant,
            "user_id": self.account.user_id,
            "created": iso(self.created),
            "updated": iso(self.updated),
            "hostId": self.host_id,
            "accessIPv4": v4,
            "accessIPv6": v6,
            "addresses": addresses,
            "image": image,
            "flavor": {
                "id": self.flavor,
                "links": [{"href": f"{root}/{tenant}/flavors/{self.flavor}", "rel": "bookmark"}],
            },
            "links": [
                {"href": f"{root}/v2/{tenant}/servers/{self.id}", "rel": "self"},
                {"href": f"{root}/{tenant}/servers/{self.id}", "rel": "bookmark"},
            ],
            "key_name": self.key_name,
            "metadata": dict(self.metadata),
            "OS-DCF:diskConfig": self.disk_config,
            "OS-EXT-STS:vm_state": vm_state,
            "OS-EXT-STS:task_state": task_state,
            "OS-EXT-STS:power_state": power,
            "RAX-PUBLIC-IP-ZONE-ID:publicIPZoneId": self.raw[36:64].hex(),
            "config_drive": "",
        }

    def v1(self) -> dict:
        """The first-gen (v1.0) server document: integer ids, plain address lists."""
        doc: dict = {
            "id": int(self.id),
            "name": self.name,
            "imageId": int(self.image),
            "flavorId": int(self.flavor),
            "hostId": self.host_id[:32],
            "status": self.status,
        }
        # v1.0 leaves progress out of some documents (the dev guide's own sample does).
        if self.status != "ACTIVE" or int(self.id) % 2 == 0:
            doc["progress"] = self.progress
        doc["addresses"] = {"public": [self.public_v4], "private": [self.private_v4]}
        doc["metadata"] = dict(self.metadata)
        return doc


def in_progress(s: Server) -> bool:
    """Whether the server's automation (or build) is still running, so churn advances it."""
    if s.deleted_at is not None:
        return False
    if s.status == "BUILD":
        return True
    if s.status != "ACTIVE":
        return False
    acct = s.account
    rc = norm(s.metadata.get(RC_STATUS))
    mo = s.metadata.get(MO_STATUS)
    if acct.rackconnect and (rc is None or rc == "DEPLOYING"):
        return True
    if mo in ("Pending", "In Progress"):
        return True
    managed_here = acct.managed and s.generation == "next"
    rc_done = not acct.rackconnect or rc in ("DEPLOYED", "UNPROCESSABLE")
    return managed_here and mo is None and rc_done


def merged_metadata(current: dict[str, str], metadata: object, replace: bool) -> dict[str, str]:
    """``current`` with ``metadata`` merged in (or replacing it); a None value deletes a key."""
    if not isinstance(metadata, dict):
        raise ValueError("metadata must be an object")
    merged = {} if replace else dict(current)
    for k, v in metadata.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return check_metadata(merged)


def check_metadata(meta: dict) -> dict[str, str]:
    """A copy of the metadata, or ValueError as Cloud Servers would refuse it."""
    if not isinstance(meta, dict):
        raise ValueError("metadata must be an object")
    if not all(type(k) is str and type(v) is str for k, v in meta.items()):
        bad = next(k for k, v in meta.items() if not isinstance(k, str) or not isinstance(v, str))
        raise ValueError(f"metadata keys and values must be strings (key {bad!r})")
    if len(meta) > MAX_METADATA_ITEMS:
        raise ValueError(f"Maximum number of metadata items exceeds {MAX_METADATA_ITEMS}")
    return dict(meta)


def features_of(s: Server) -> dict[str, str]:
    """The RackConnect automation features of a server, named as in its metadata."""
    found = {
        k[len(FEATURE_PREFIX) :]: v.strip().upper()
        for k, v in s.metadata.items()
        if k.startswith(FEATURE_PREFIX)
    }
    return found or dict.fromkeys(FEATURES, s.account.feature_value)
