"""The simulated fleet: servers indexed for fast paging, and how they evolve step by step."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from exporter.simulator.scenario import (
    FEATURE_PREFIX,
    FEATURES,
    FIRST_GEN_REGION,
    MO_STATUS,
    RC_REASON,
    RC_STATUS,
    Scenario,
    SimAccount,
    mismatch_reason,
    rc_metadata,
)

DELETED_RETENTION = 30 * 86400
MAX_METADATA_ITEMS = 40

_NEXT_GEN_IMAGES = (
    "f19067a2-0e5c-4d2b-8d1b-2a6b7e3f4c51",  # Ubuntu 14.04 LTS (PVHVM)
    "9b3a8e7c-5d41-4f2e-a0c6-7e1d2b3c4a5f",  # CentOS 7 (PVHVM)
    "0c5e2a7d-8b9f-4e1a-b3c6-d2f1e0a9b8c7",  # Red Hat Enterprise Linux 7 (PVHVM)
    "6a1f4b2c-3d5e-4f7a-8b9c-0d1e2f3a4b5c",  # Windows Server 2012 R2
)
_NEXT_GEN_FLAVORS = ("general1-1", "general1-2", "general1-4", "performance1-2", "io1-15", "2")
_FIRST_GEN_IMAGES = ("112", "119", "187", "58")
_FIRST_GEN_FLAVORS = ("1", "2", "3", "4")
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


class MarkerNotFoundError(LookupError):
    """The ``marker`` names no server of this account and region."""


class Fleet:
    """Every server of every account; all access goes through ``lock``."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.rng = random.Random(scenario.seed)
        self.accounts: dict[str, SimAccount] = {}
        self.by_id: dict[str, Server] = {}
        self.lists: dict[tuple[str, str], list[Server]] = {}
        self.pos: dict[str, int] = {}
        self.pipeline: dict[str, None] = {}
        self.live: dict[tuple[str, str], int] = {}
        self.targets: dict[tuple[str, str], int] = {}
        self.steps = 0
        # (when, server id, Nova status or None, metadata or None), soonest first
        self._due: list[tuple[float, str, str | None, dict | None]] = []
        self._next_first_gen = 10040001
        self._name_seq: dict[tuple[str, str], int] = {}
        now = int(clock())
        for spec in scenario.accounts:
            account = spec.public()
            self.accounts[account.name] = account
            for region in self.regions_of(account):
                self.lists[(account.name, region)] = []
                self.live[(account.name, region)] = 0
            for s in spec.servers:
                created = now - int(86400 * (2 + 698 * self.rng.random()))
                updated = min(now - 60, created + int(600 + 30 * 86400 * self.rng.random()))
                self._create(
                    account,
                    s.region,
                    s.name,
                    s.metadata,
                    generation=s.generation,
                    status=s.status,
                    image=s.image,
                    created=created,
                    updated=updated,
                )
        self.targets = dict(self.live)

    @staticmethod
    def regions_of(account: SimAccount) -> tuple[str, ...]:
        """The account's server regions; first-gen servers live in GLOBAL."""
        return account.regions + ((FIRST_GEN_REGION,) if account.first_gen else ())

    def account_by_tenant(self, tenant: str) -> SimAccount | None:
        """The account owning a tenant id."""
        for account in self.accounts.values():
            if account.tenant_id == tenant:
                return account
        return None

    # --- creation and mutation -------------------------------------------------------

    def _create(
        self,
        account: SimAccount,
        region: str,
        name: str | None,
        metadata: dict | None,
        *,
        generation: str,
        status: str,
        image: str | None = None,
        created: int | None = None,
        updated: int | None = None,
    ) -> Server:
        rng = self.rng
        if generation not in ("next", "first"):
            raise ValueError(f"generation must be 'next' or 'first', not {generation!r}")
        # One draw per server keeps building large fleets fast.
        raw = rng.getrandbits(512).to_bytes(64, "big")
        if generation == "first":
            if not account.first_gen:
                raise ValueError(f"account {account.name!r} has no first-gen servers")
            region = FIRST_GEN_REGION
            sid = str(self._next_first_gen)
            self._next_first_gen += 1 + raw[58] % 41
            if image is None or not image.isdigit():
                image = _FIRST_GEN_IMAGES[raw[53] % len(_FIRST_GEN_IMAGES)]
            flavor = _FIRST_GEN_FLAVORS[raw[54] % len(_FIRST_GEN_FLAVORS)]
        else:
            region = region.upper()
            if region not in account.regions:
                raise ValueError(f"account {account.name!r} has no region {region!r}")
            h = raw[:16].hex()
            sid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[raw[8] & 3]}{h[17:20]}-{h[20:32]}"
            if image is None:
                image = _NEXT_GEN_IMAGES[raw[53] % len(_NEXT_GEN_IMAGES)]
            flavor = _NEXT_GEN_FLAVORS[raw[54] % len(_NEXT_GEN_FLAVORS)]
        key = (account.name, region)
        if name is None:
            seq = self._name_seq.get(key, 100) + 1
            self._name_seq[key] = seq
            name = f"node-{region.lower()}-{seq:03d}"
        meta = _check_metadata(metadata or {})
        now = int(self.clock())
        server = Server(
            id=sid,
            account=account,
            region=region,
            generation=generation,
            name=name,
            status=status,
            progress=5 + raw[57] % 36 if status == "BUILD" else 100,
            created=now if created is None else created,
            updated=now if updated is None else updated,
            metadata=meta,
            raw=raw,
            image=image,
            flavor=flavor,
        )
        self._after_change(server)
        seq_list = self.lists[key]
        self.pos[sid] = len(seq_list)
        seq_list.append(server)
        self.by_id[sid] = server
        self.live[key] += 1
        self._track(server)
        return server

    def add(
        self,
        account: str,
        region: str,
        name: str | None,
        metadata: dict | None,
        *,
        generation: str,
        status: str,
        created: float | None = None,
    ) -> str:
        """Create a server now (created then, if given); returns its id."""
        with self.lock:
            acct = self.accounts.get(account)
            if acct is None:
                raise KeyError(f"unknown account {account!r}")
            if not isinstance(status, str) or not status:
                raise ValueError("status must be a non-empty string")
            server = self._create(
                acct,
                region,
                name,
                metadata,
                generation=generation,
                status=status.upper(),
                created=None if created is None else int(created),
            )
            server.kept = True
            return server.id

    def set_metadata(self, server_id: str, metadata: dict, replace: bool = False) -> None:
        """Merge (or replace) metadata; a None value deletes that key."""
        with self.lock:
            server = self._get_live(server_id)
            server.metadata = _merged(server.metadata, metadata, replace)
            server.kept = True
            self._touch(server)

    def hide(self, server_id: str, seconds: float) -> None:
        """Answer 404 for the server (and leave it out of listings) for ``seconds``."""
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("appear_after must be a non-negative number of seconds")
        with self.lock:
            until = self.clock() + seconds
            self._get_live(server_id).hidden_until = until
            # Touched when it appears, so that changes-since shows it then.
            self._due.append((until, server_id, None, None))
            self._due.sort(key=lambda d: d[0])

    def schedule(
        self, server_id: str, after: float, status: str | None, metadata: dict | None
    ) -> None:
        """In ``after`` seconds, set the Nova status and/or merge metadata."""
        if not isinstance(after, int | float) or isinstance(after, bool) or after < 0:
            raise ValueError("after must be a non-negative number of seconds")
        if status is not None and (not isinstance(status, str) or not status.strip()):
            raise ValueError("status must be a non-empty string")
        if status is None and metadata is None:
            raise ValueError("give a status, metadata or both")
        _merged({}, metadata or {}, False)  # reject bad metadata now, not when it is due
        with self.lock:
            self._get_live(server_id).kept = True
            self._due.append((self.clock() + after, server_id, status, metadata))
            self._due.sort(key=lambda d: d[0])
        self.apply_due()

    def apply_due(self) -> None:
        """Apply the scheduled transitions whose time has come."""
        if not self._due:
            return
        with self.lock:
            now = self.clock()
            while self._due and self._due[0][0] <= now:
                _, server_id, status, metadata = self._due.pop(0)
                server = self.by_id.get(server_id)
                if server is None or server.deleted_at is not None:
                    continue
                if status is not None:
                    server.status = status.strip().upper()
                    server.progress = 100 if server.status != "BUILD" else server.progress
                if metadata is not None:
                    server.metadata = _merged(server.metadata, metadata, False)
                self._touch(server)

    def delete(self, server_id: str) -> None:
        """Mark a server DELETED; it stays visible to changes-since for 30 days."""
        with self.lock:
            server = self._get_live(server_id)
            self._delete(server)

    def _delete(self, server: Server) -> None:
        server.status = "DELETED"
        server.deleted_at = int(self.clock())
        self._touch(server)
        self.live[(server.account.name, server.region)] -= 1

    def _get_live(self, server_id: str) -> Server:
        server = self.by_id.get(server_id)
        if server is None or server.deleted_at is not None:
            raise KeyError(f"no server {server_id!r}")
        return server

    def _touch(self, server: Server) -> None:
        # Keep `updated` strictly increasing so every change shows in changes-since.
        server.updated = max(int(self.clock()), server.updated + 1)
        server.age = 0
        self._after_change(server)
        self._track(server)

    def _after_change(self, server: Server) -> None:
        if norm(server.metadata.get(RC_STATUS)) == "DEPLOYED" and server.gateway_ip is None:
            octet = 1 + sum(map(ord, server.account.name + server.region)) % 200
            server.gateway_ip = f"10.{octet}.{server.raw[16] % 8}.1"

    def _track(self, server: Server) -> None:
        if self._in_progress(server):
            self.pipeline[server.id] = None
        else:
            self.pipeline.pop(server.id, None)

    def _in_progress(self, s: Server) -> bool:
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

    # --- evolution ---------------------------------------------------------------------

    def step(self) -> None:
        """Advance every in-progress server one stage; create and delete a few servers."""
        with self.lock:
            self.steps += 1
            for sid in list(self.pipeline):
                self._advance(self.by_id[sid])
            for (name, region), seq in self.lists.items():
                key = (name, region)
                live, target = self.live[key], self.targets[key]
                p_new, p_del = 0.25, 0.25
                if live < target:
                    p_new, p_del = 0.4, 0.1
                elif live > target:
                    p_new, p_del = 0.1, 0.4
                if region == FIRST_GEN_REGION:
                    p_new, p_del = p_new / 4, p_del / 4
                if self.rng.random() < p_new:
                    gen = "first" if region == FIRST_GEN_REGION else "next"
                    self._create(
                        self.accounts[name], region, None, {}, generation=gen, status="BUILD"
                    )
                if self.rng.random() < p_del and live > 2:
                    self._delete_random(seq)

    def _delete_random(self, seq: list[Server]) -> None:
        for _ in range(8):
            victim = seq[self.rng.randrange(len(seq))]
            if victim.deleted_at is None and victim.id not in self.pipeline and not victim.kept:
                self._delete(victim)
                return

    def _advance(self, s: Server) -> None:
        rng = self.rng
        acct = s.account
        s.age += 1
        if s.status == "BUILD":
            s.status, s.progress = "ACTIVE", 100
            if acct.rackconnect:
                s.metadata.update(rc_metadata("DEPLOYING", acct.feature_value))
            self._touch(s)
            return
        rc = norm(s.metadata.get(RC_STATUS))
        if acct.rackconnect and rc is None:
            s.metadata.update(rc_metadata("DEPLOYING", acct.feature_value))
            self._touch(s)
            return
        if acct.rackconnect and rc == "DEPLOYING":
            if s.age < 2 and rng.random() < 0.5:
                return
            roll = rng.random()
            outcome: str | None
            if s.generation == "first":
                outcome = "DEPLOYED" if roll < 0.92 else "FAILED"
            else:
                outcome = "DEPLOYED" if roll < 0.85 else "FAILED" if roll < 0.93 else None
            if outcome is None:
                s.metadata[RC_STATUS] = "UNPROCESSABLE"
                rc_region = acct.rackconnect_region
                s.metadata[RC_REASON] = (
                    mismatch_reason(s.region, rc_region)
                    if rc_region != s.region
                    else "Cloud server is not attached to the RackConnect cloud network"
                )
            else:
                s.metadata[RC_STATUS] = outcome
            self._touch(s)
            return
        mo = s.metadata.get(MO_STATUS)
        if mo is None:
            s.metadata[MO_STATUS] = "Pending"
        elif mo == "Pending":
            s.metadata[MO_STATUS] = "In Progress"
        elif mo == "In Progress":
            if s.age < 2 and rng.random() < 0.3:
                return
            roll = rng.random()
            s.metadata[MO_STATUS] = (
                "Complete"
                if roll < 0.85
                else "Build Error"
                if roll < 0.95
                else "Authentication Error"
            )
        self._touch(s)

    # --- reading -------------------------------------------------------------------------

    def iter_after(self, account: str, region: str, marker: str | None) -> Iterator[Server]:
        """Servers of an account and region in creation order, after ``marker`` if given.

        Like Nova, a marker may name a deleted server.
        """
        seq = self.lists.get((account, region), [])
        start = 0
        if marker is not None:
            server = self.by_id.get(marker)
            if server is None or (server.account.name, server.region) != (account, region):
                raise MarkerNotFoundError(marker)
            start = self.pos[marker] + 1
        return (seq[i] for i in range(start, len(seq)))

    def visible(self, s: Server, since: float | None, now: float) -> bool:
        """Deleted servers show only to changes-since, and only for 30 days."""
        if s.hidden_until is not None and now < s.hidden_until:
            return False
        if since is None:
            return s.deleted_at is None
        if s.updated < since:
            return False
        return s.deleted_at is None or s.deleted_at >= now - DELETED_RETENTION

    def find(self, account: SimAccount, region: str, server_id: str) -> Server | None:
        """A live server of this account and region."""
        s = self.by_id.get(server_id)
        if s is None or s.deleted_at is not None:
            return None
        if s.account.name != account.name or s.region != region:
            return None
        if s.hidden_until is not None and self.clock() < s.hidden_until:
            return None
        return s

    def summaries(
        self, account: str | None, region: str | None, include_deleted: bool = False
    ) -> list[dict]:
        """Copies of servers, filtered."""
        with self.lock:
            out: list[dict] = []
            for (name, reg), seq in self.lists.items():
                if account is not None and name != account:
                    continue
                if region is not None and reg != region.upper():
                    continue
                out.extend(s.summary() for s in seq if include_deleted or s.deleted_at is None)
            return out


def _merged(current: dict[str, str], metadata: object, replace: bool) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise ValueError("metadata must be an object")
    merged = {} if replace else dict(current)
    for k, v in metadata.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return _check_metadata(merged)


def _check_metadata(meta: dict) -> dict[str, str]:
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
