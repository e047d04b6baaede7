"""Scenarios: which accounts and servers the simulated cloud starts with."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

RC_STATUS = "rackconnect_automation_status"
RC_REASON = "rackconnect_unprocessable_reason"
FEATURE_PREFIX = "rackconnect_automation_feature_"
# Upstream really spells the third key "provison"; a correctly spelled one is a rare oddity.
FEATURES = ("configure_network_stack", "manage_software_firewall", "provison_public_ip")
MO_STATUS = "rax_service_level_automation"
REGIONS = ("ORD", "DFW", "IAD", "LON", "SYD", "HKG")
FIRST_GEN_REGION = "GLOBAL"


def rc_metadata(
    status: str | None,
    feature: str = "ENABLED",
    *,
    managed: str | None = None,
    reason: str | None = None,
    features: tuple[str, ...] = FEATURES,
) -> dict[str, str]:
    """Metadata as RackConnect (and Managed Operations) automation leaves it."""
    meta = {FEATURE_PREFIX + name: feature for name in features}
    if status is not None:
        meta[RC_STATUS] = status
    if reason is not None:
        meta[RC_REASON] = reason
    if managed is not None:
        meta[MO_STATUS] = managed
    return meta


def mismatch_reason(region: str, rc_region: str) -> str:
    """The usual UNPROCESSABLE reason: built outside the RackConnect configuration region."""
    return (
        f"Cloud server region {region} does not match RackConnect configuration region {rc_region}"
    )


@dataclass(frozen=True)
class ServerSpec:
    """One server a scenario starts with. ``image=""`` means boot from volume."""

    name: str
    region: str
    generation: str = "next"
    status: str = "ACTIVE"
    metadata: dict[str, str] = field(default_factory=dict)
    image: str | None = None


@dataclass(frozen=True)
class SimAccount:
    """A simulated cloud account and the credentials that reach it (all fake)."""

    name: str
    username: str
    api_key: str
    password: str
    tenant_id: str
    regions: tuple[str, ...]
    rackconnect: bool = False
    managed: bool = False
    first_gen: bool = False
    disabled: bool = False
    user_id: str = ""
    rackconnect_region: str = ""
    feature_value: str = "ENABLED"
    # Regions served by RackConnect v3.0 (its catalog entry, public IPs, pools).
    rackconnect_v3: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        regions = tuple(r.upper() for r in self.regions)
        if not regions:
            raise ValueError(f"account {self.name!r} needs at least one region")
        object.__setattr__(self, "regions", regions)
        v3 = tuple(r.upper() for r in self.rackconnect_v3)
        if not set(v3) <= set(regions):
            raise ValueError(f"account {self.name!r}: rackconnect_v3 regions must be its regions")
        object.__setattr__(self, "rackconnect_v3", v3)
        if not self.user_id:
            object.__setattr__(
                self,
                "user_id",
                str(int(self.tenant_id) + 7000000)
                if self.tenant_id.isdigit()
                else f"u-{self.tenant_id}",
            )
        if not self.rackconnect_region:
            object.__setattr__(self, "rackconnect_region", regions[0])

    @property
    def default_region(self) -> str:
        """The user's ``RAX-AUTH:defaultRegion``."""
        return self.regions[0]

    def public(self) -> SimAccount:
        """This account without scenario-only fields."""
        return SimAccount(**{f: getattr(self, f) for f in SimAccount.__dataclass_fields__})


@dataclass(frozen=True)
class SimAccountSpec(SimAccount):
    """An account plus the servers it starts with."""

    servers: tuple[ServerSpec, ...] = ()


@dataclass
class Scenario:
    """The starting fleet: accounts with their servers, and the seed for everything random."""

    accounts: list[SimAccountSpec]
    seed: int = 1

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for acct in self.accounts:
            for key in (acct.name, acct.username, acct.tenant_id):
                if key in seen:
                    raise ValueError(f"duplicate account name, username or tenant {key!r}")
                seen.add(key)

    @classmethod
    def demo(cls, seed: int = 1) -> Scenario:
        """Three accounts with a realistic mix of states, including odd but legal values."""
        rng = random.Random(seed)
        acme_rc = "ORD"
        acme = SimAccountSpec(
            name="acme",
            username="acme-ops",
            api_key="acmeb1d3f0c2a4e6b8d0f1a3c5e7b9d2f4",
            password="Acme-Demo-Passw0rd",
            tenant_id="100001",
            regions=("ORD", "DFW", "IAD"),
            rackconnect=True,
            managed=True,
            first_gen=True,
            rackconnect_region=acme_rc,
            servers=(
                *_region(
                    rng,
                    "ORD",
                    [
                        ("BUILD", {}),
                        ("ACTIVE", rc_metadata("DEPLOYING")),
                        ("ACTIVE", rc_metadata("FAILED")),
                        ("ACTIVE", rc_metadata("DEPLOYED", managed="In Progress")),
                        ("ACTIVE", rc_metadata("DEPLOYED", managed="Build Error")),
                        ("ACTIVE", rc_metadata("deployed", managed="Complete")),
                    ],
                    rc_metadata("DEPLOYED", managed="Complete"),
                    low=7,
                ),
                *_region(
                    rng,
                    "DFW",
                    [
                        (
                            "ACTIVE",
                            rc_metadata(
                                "UNPROCESSABLE",
                                managed="Complete",
                                reason=mismatch_reason("DFW", acme_rc),
                            ),
                        ),
                        ("ACTIVE", rc_metadata("DEPLOYED", managed="Authentication Error")),
                        ("ACTIVE", rc_metadata("DEPLOYED", managed="Pending")),
                        ("ACTIVE", rc_metadata(" DEPLOYED ", managed="Complete")),
                        (
                            "ACTIVE",
                            rc_metadata(
                                "DEPLOYED",
                                managed="Complete",
                                features=(
                                    "configure_network_stack",
                                    "manage_software_firewall",
                                    "provision_public_ip",
                                ),
                            ),
                        ),
                    ],
                    rc_metadata("DEPLOYED", managed="Complete"),
                    low=6,
                ),
                *_region(
                    rng,
                    "IAD",
                    [
                        ("ACTIVE", rc_metadata("DEPLOYED", "DISABLED", managed="Complete")),
                        (
                            "ACTIVE",
                            rc_metadata(
                                "DEPLOYED", managed="Complete", features=FEATURES[:1] + FEATURES[2:]
                            ),
                        ),
                        ("ACTIVE", rc_metadata("DEPLOYING")),
                    ],
                    rc_metadata("DEPLOYED", managed="Complete"),
                    low=5,
                    boot_from_volume=True,
                ),
                ServerSpec(
                    "legacy-web-01", FIRST_GEN_REGION, "first", metadata=rc_metadata("DEPLOYED")
                ),
                ServerSpec(
                    "legacy-db-01", FIRST_GEN_REGION, "first", metadata=rc_metadata("DEPLOYING")
                ),
                ServerSpec(
                    "legacy-app-01", FIRST_GEN_REGION, "first", metadata=rc_metadata("FAILED")
                ),
            ),
        )
        globex = SimAccountSpec(
            name="globex",
            username="globex-admin",
            api_key="globex7e9c1a3b5d7f9e1c3a5b7d9f1e3c",
            password="Globex-Demo-Passw0rd",
            tenant_id="200002",
            regions=("DFW", "SYD"),
            rackconnect=True,
            rackconnect_region="DFW",
            servers=(
                *_region(
                    rng,
                    "DFW",
                    [
                        ("ACTIVE", rc_metadata("DEPLOYING")),
                        ("ACTIVE", rc_metadata("FAILED")),
                        ("ACTIVE", rc_metadata("DEPLOYED", "DISABLED")),
                    ],
                    rc_metadata("DEPLOYED"),
                    low=5,
                ),
                *_region(
                    rng,
                    "SYD",
                    [
                        (
                            "ACTIVE",
                            rc_metadata("UNPROCESSABLE", reason=mismatch_reason("SYD", "DFW")),
                        ),
                    ],
                    rc_metadata("DEPLOYED"),
                    low=5,
                ),
            ),
        )
        initech = SimAccountSpec(
            name="initech",
            username="initech-dev",
            api_key="initech24680ace13579bdf24680ace135",
            password="Initech-Demo-Passw0rd",
            tenant_id="300003",
            regions=("HKG",),
            rackconnect_v3=("HKG",),
            servers=tuple(
                _region(
                    rng,
                    "HKG",
                    [
                        ("ERROR", {}),
                        ("SHUTOFF", {"role": "batch"}),
                        ("ACTIVE", {"role": "db", "backup": "nightly"}),
                    ],
                    {"role": "web"},
                    low=5,
                )
            ),
        )
        return cls(accounts=[acme, globex, initech], seed=seed)

    @classmethod
    def scale(
        cls,
        servers: int = 10000,
        regions: tuple[str, ...] = ("ORD", "DFW", "IAD"),
        seed: int = 1,
        managed: bool = True,
        rackconnect: bool = True,
        *,
        rackconnect_v3: bool = False,
    ) -> Scenario:
        """One account with many servers split across regions, mostly in settled states.

        With ``rackconnect_v3`` every region is a RackConnect v3.0 region, where each
        server starts with a public IP and a load balancer pool membership.
        """
        rng = random.Random(seed)
        regions = tuple(r.upper() for r in regions)
        specs = []
        settled_mo = "Complete" if managed else None
        for i in range(servers):
            region = regions[i * len(regions) // max(servers, 1)]
            meta: dict[str, str] = {}
            if rackconnect:
                roll = rng.random()
                if roll < 0.90:
                    meta = rc_metadata("DEPLOYED", managed=settled_mo)
                elif roll < 0.93:
                    meta = rc_metadata("DEPLOYING")
                elif roll < 0.96:
                    meta = rc_metadata("FAILED")
                else:
                    meta = rc_metadata(
                        "UNPROCESSABLE",
                        managed=settled_mo,
                        reason=mismatch_reason(region, regions[0]),
                    )
                    if region == regions[0]:
                        meta = rc_metadata("DEPLOYED", managed="In Progress" if managed else None)
            elif managed:
                meta = {MO_STATUS: "Complete" if rng.random() < 0.95 else "Build Error"}
            specs.append(ServerSpec(f"node-{region.lower()}-{i:05d}", region, metadata=meta))
        account = SimAccountSpec(
            name="scale",
            username="scale-user",
            api_key="scale0123456789abcdef0123456789ab",
            password="Scale-Demo-Passw0rd",
            tenant_id="900009",
            regions=regions,
            rackconnect=rackconnect,
            managed=managed,
            rackconnect_v3=regions if rackconnect_v3 else (),
            servers=tuple(specs),
        )
        return cls(accounts=[account], seed=seed)


_ROLES = ("web", "app", "db", "cache", "worker", "api", "queue", "search")


def _region(
    rng: random.Random,
    region: str,
    specials: list[tuple[str, dict[str, str]]],
    regular: dict[str, str],
    *,
    low: int,
    boot_from_volume: bool = False,
) -> list[ServerSpec]:
    """Between ``low`` and 10 servers in a region: the special cases plus regular ones."""
    total = rng.randint(max(low, len(specials) + 1), 10)
    states = specials + [("ACTIVE", regular)] * (total - len(specials))
    rng.shuffle(states)
    out = []
    for i, (status, meta) in enumerate(states, start=1):
        name = f"{_ROLES[(i - 1) % len(_ROLES)]}-{region.lower()}-{i:02d}"
        image = "" if boot_from_volume and i == 1 else None
        out.append(ServerSpec(name, region, status=status, metadata=dict(meta), image=image))
    return out
