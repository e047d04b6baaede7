"""The simulated fleet's state: every server, indexed for fast paging, and its changes.

How the fleet evolves on its own (builds finishing, automation running, churn) is in
``churn``; this module only holds the servers and applies the changes asked of it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator

from exporter.simulator.records import (
    Server,
    check_metadata,
    in_progress,
    merged_metadata,
    norm,
)
from exporter.simulator.scenario import FIRST_GEN_REGION, RC_STATUS, Scenario, SimAccount

DELETED_RETENTION = 30 * 86400

_NEXT_GEN_IMAGES = (
    "f19067a2-0e5c-4d2b-8d1b-2a6b7e3f4c51",  # Ubuntu 14.04 LTS (PVHVM)
    "9b3a8e7c-5d41-4f2e-a0c6-7e1d2b3c4a5f",  # CentOS 7 (PVHVM)
    "0c5e2a7d-8b9f-4e1a-b3c6-d2f1e0a9b8c7",  # Red Hat Enterprise Linux 7 (PVHVM)
    "6a1f4b2c-3d5e-4f7a-8b9c-0d1e2f3a4b5c",  # Windows Server 2012 R2
)
_NEXT_GEN_FLAVORS = ("general1-1", "general1-2", "general1-4", "performance1-2", "io1-15", "2")
_FIRST_GEN_IMAGES = ("112", "119", "187", "58")
_FIRST_GEN_FLAVORS = ("1", "2", "3", "4")


def _recent(server: Server, now: int) -> None:
    """Date a server whose build or automation is still running a few minutes back.

    Automation takes minutes, so such a server cannot have been created months ago; the
    settled fleet keeps its old dates. The minutes come from the server's own random bytes,
    so the seeded draws of everything else stay as they were.
    """
    minutes = 3 + server.raw[60] % 40
    server.created = now - 60 * minutes
    server.updated = now - 60 * (1 + server.raw[61] % (minutes - 1))


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
                server = self.create(
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
                if in_progress(server):
                    _recent(server, now)
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

    def create(
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
        """Make a server (an id, addresses, image and flavor from one random draw)."""
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
        meta = check_metadata(metadata or {})
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
            server = self.create(
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
            server.metadata = merged_metadata(server.metadata, metadata, replace)
            server.kept = True
            self.touch(server)

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
        merged_metadata({}, metadata or {}, False)  # reject bad metadata now, not when it is due
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
                    server.metadata = merged_metadata(server.metadata, metadata, False)
                self.touch(server)

    def delete(self, server_id: str) -> None:
        """Mark a server DELETED; it stays visible to changes-since for 30 days."""
        with self.lock:
            server = self._get_live(server_id)
            self.remove(server)

    def remove(self, server: Server) -> None:
        """Mark the server DELETED now."""
        server.status = "DELETED"
        server.deleted_at = int(self.clock())
        self.touch(server)
        self.live[(server.account.name, server.region)] -= 1

    def _get_live(self, server_id: str) -> Server:
        server = self.by_id.get(server_id)
        if server is None or server.deleted_at is not None:
            raise KeyError(f"no server {server_id!r}")
        return server

    def touch(self, server: Server) -> None:
        """Record a change: bump ``updated`` and re-file the server as in progress or not."""
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
        if in_progress(server):
            self.pipeline[server.id] = None
        else:
            self.pipeline.pop(server.id, None)

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
