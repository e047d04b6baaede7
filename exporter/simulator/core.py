"""The simulated Rackspace cloud's facade: settings, URLs, fleet controls, faults, tokens."""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable

from exporter.simulator import churn, rackconnect
from exporter.simulator.faults import Fault, FaultSet
from exporter.simulator.fleet import Fleet
from exporter.simulator.rcv3 import POOL_NODE, PUBLIC_IP, SETTLE_SECONDS, RackConnectV3
from exporter.simulator.scenario import Scenario, SimAccount
from exporter.simulator.serving import REQUEST_LOG_LIMIT, Dispatcher, HttpService
from exporter.simulator.web import Reply, Request


class Simulator:
    """Identity v2.0/v1.0, Cloud Servers v2/v1.0, RackConnect v2.0 (in-server) and v3.0.

    ``step_interval`` is the number of seconds between automatic fleet evolution steps in a
    background thread (None: only ``step()``). ``clock`` supplies the time for tokens,
    timestamps and rate limits; tests may replace it.
    """

    def __init__(
        self,
        scenario: Scenario,
        step_interval: float | None = None,
        *,
        token_lifetime: float = 86400.0,
        rate_limit_per_minute: int | None = None,
        rackconnect_variant: str = "a",
        expires_format: str = "z",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.scenario = scenario
        self.fleet = Fleet(scenario, self._now)
        self.rcv3 = RackConnectV3(self.fleet, scenario.seed)
        self.step_interval = step_interval
        self.token_lifetime = token_lifetime
        self.rate_limit_per_minute = rate_limit_per_minute
        self.rackconnect_variant = rackconnect_variant
        self.expires_format = expires_format
        self.next_link_without_limit = False
        self.request_log: list[tuple[str, str, int, str | None, str | None]] = []
        self.base_url = ""
        self._faults = FaultSet()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._issued: collections.deque[str] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self._endpoints: dict[str, str] = {}
        self._lock = threading.Lock()
        self._dispatcher = Dispatcher(self, self._faults)
        self._service = HttpService(self)

    def _now(self) -> float:
        return self.clock()

    # --- settings ----------------------------------------------------------------------

    @property
    def token_lifetime(self) -> float:
        """Seconds a newly issued token stays valid."""
        return self._token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, value: float) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ValueError("token_lifetime must be a positive number of seconds")
        self._token_lifetime = float(value)

    @property
    def expires_format(self) -> str:
        """``"z"`` (``...57.637Z``) or ``"offset"`` (``...53.000-05:00``)."""
        return self._expires_format

    @expires_format.setter
    def expires_format(self, value: str) -> None:
        if value not in ("z", "offset"):
            raise ValueError("expires_format must be 'z' or 'offset'")
        self._expires_format = value

    @property
    def rackconnect_variant(self) -> str:
        """Which guessed JSON shapes the in-server API uses: ``"a"`` or ``"b"``."""
        return self._rackconnect_variant

    @rackconnect_variant.setter
    def rackconnect_variant(self, value: str) -> None:
        if value not in rackconnect.VARIANTS:
            raise ValueError(
                f"rackconnect_variant must be one of {', '.join(rackconnect.VARIANTS)}"
            )
        self._rackconnect_variant = value

    @property
    def rate_limit_per_minute(self) -> int | None:
        """Account-wide GETs allowed per rolling minute on Cloud Servers (None: unlimited)."""
        return self._rate_limit

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: int | None) -> None:
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ValueError("rate_limit_per_minute must be a positive integer or null")
        self._rate_limit = value

    def settings(self) -> dict:
        """The run-time settings, as the control API reports them."""
        return {
            "token_lifetime": self.token_lifetime,
            "expires_format": self.expires_format,
            "rackconnect_variant": self.rackconnect_variant,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "next_link_without_limit": self.next_link_without_limit,
        }

    # --- URLs and accounts ----------------------------------------------------------------

    @property
    def identity_url(self) -> str:
        """Identity v2.0 root, with a trailing slash."""
        return f"{self.base_url}/v2.0/"

    @property
    def auth_v1_url(self) -> str:
        """Identity v1.0 URL."""
        return f"{self.base_url}/v1.0"

    @property
    def control_url(self) -> str:
        """Control API root."""
        return f"{self.base_url}/_control/"

    def rackconnect_url(self, server_id: str) -> str:
        """Base URL of the in-server API as seen from ``server_id``."""
        return f"{self.base_url}/rackconnect/{server_id}"

    @property
    def accounts(self) -> list[SimAccount]:
        """Every account, with its fake credentials."""
        return list(self.fleet.accounts.values())

    def account_by_username(self, username: str) -> SimAccount | None:
        """The account a user name logs in to."""
        for account in self.fleet.accounts.values():
            if account.username == username:
                return account
        return None

    def override_endpoint(self, region: str, base_url: str | None) -> None:
        """Point the catalog's Cloud Servers endpoint of ``region`` at ``base_url``.

        The URL replaces the simulator's own base (``http://host:port``) for that region,
        for example a closed port to make the region refuse connections; None restores it.
        It applies to tokens issued from now on.
        """
        region = region.upper()
        if base_url is None:
            with self._lock:
                self._endpoints.pop(region, None)
            return
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError("the endpoint must be an http:// or https:// URL")
        with self._lock:
            self._endpoints[region] = base_url.rstrip("/")

    def endpoints(self) -> dict[str, str]:
        """The overridden endpoints, by region."""
        with self._lock:
            return dict(self._endpoints)

    def endpoint_base(self, region: str, base: str) -> str:
        """The base URL the catalog gives for ``region`` (``base`` unless overridden)."""
        with self._lock:
            return self._endpoints.get(region.upper(), base)

    # --- fleet controls ---------------------------------------------------------------------

    def step(self) -> None:
        """Advance the fleet one evolution step (deterministic given the seed)."""
        churn.step(self.fleet)

    def add_server(
        self,
        account: str,
        region: str,
        name: str | None = None,
        metadata: dict | None = None,
        *,
        generation: str = "next",
        status: str = "ACTIVE",
        created: float | None = None,
        appear_after: float | None = None,
    ) -> str:
        """Create a server; returns its id (a decimal integer for first-gen).

        ``created``: epoch seconds, default now. ``appear_after``: Cloud Servers answers 404
        for it that many seconds, as right after a real create.
        """
        sid = self.fleet.add(
            account, region, name, metadata, generation=generation, status=status, created=created
        )
        if appear_after:
            self.fleet.hide(sid, appear_after)
        return sid

    def schedule(
        self,
        server_id: str,
        after: float,
        *,
        status: str | None = None,
        metadata: dict | None = None,
    ) -> None:
        """In ``after`` seconds (by ``clock``), set the Nova status and/or merge metadata."""
        self.fleet.schedule(server_id, after, status, metadata)

    def set_status(self, server_id: str, status: str) -> None:
        """Set the Nova status now (BUILD, ACTIVE, ERROR, ...)."""
        self.fleet.schedule(server_id, 0, status, None)

    def not_found_once(self, server_id: str, count: int = 1) -> str:
        """The next ``count`` reads of the server answer 404; returns the fault id."""
        return self.add_fault(
            Fault(kind="status", status=404, path_contains=f"/servers/{server_id}", count=count)
        )

    def set_metadata(self, server_id: str, metadata: dict, replace: bool = False) -> None:
        """Merge metadata into a server (None deletes a key); bumps ``updated``."""
        self.fleet.set_metadata(server_id, metadata, replace)

    def delete_server(self, server_id: str) -> None:
        """Delete a server: DELETED via changes-since for 30 days, gone from plain listings."""
        self.fleet.delete(server_id)

    def servers(
        self, account: str | None = None, region: str | None = None, include_deleted: bool = False
    ) -> list[dict]:
        """Copies of the servers, with ``generation`` and ``region``."""
        self.fleet.apply_due()
        return self.fleet.summaries(account, region, include_deleted)

    # --- RackConnect v3.0 ------------------------------------------------------------------

    def rackconnect_v3(self, account: str | None = None, region: str | None = None) -> dict:
        """Copies of the v3.0 pools and resources (public IPs and pool nodes), as served now."""
        with self.fleet.lock:
            self.fleet.apply_due()
            self.rcv3.settle_all()
            return self.rcv3.summaries(account, region)

    def add_public_ip(
        self,
        server_id: str,
        *,
        after: float = SETTLE_SECONDS,
        outcome: str = "ACTIVE",
        detail: str | None = None,
    ) -> str:
        """Give a server a public IP: ``ADDING`` now, ``outcome`` (``ACTIVE`` or
        ``ADD_FAILED`` with ``detail``) ``after`` seconds later; returns its id."""
        return self._add_v3(
            server_id, PUBLIC_IP, pool_id=None, after=after, outcome=outcome, detail=detail
        )

    def add_pool_node(
        self,
        server_id: str,
        pool_id: str,
        *,
        after: float = SETTLE_SECONDS,
        outcome: str = "ACTIVE",
        detail: str | None = None,
    ) -> str:
        """Add a server to a load balancer pool, timed like ``add_public_ip``; returns its id."""
        return self._add_v3(
            server_id, POOL_NODE, pool_id=pool_id, after=after, outcome=outcome, detail=detail
        )

    def _add_v3(
        self,
        server_id: str,
        kind: str,
        *,
        pool_id: str | None,
        after: float,
        outcome: str,
        detail: str | None,
    ) -> str:
        with self.fleet.lock:
            self.fleet.apply_due()
            server = self.fleet.by_id.get(server_id)
            if server is None or server.deleted_at is not None:
                raise KeyError(f"no server {server_id!r}")
            self.rcv3.settle_all()
            added = self.rcv3.add(
                server, kind, pool_id, after=after, outcome=outcome, detail=detail
            )
            return added.id

    def remove_v3(
        self, resource_id: str, *, after: float = SETTLE_SECONDS, fail: bool = False
    ) -> None:
        """Remove a public IP or pool node: ``REMOVING``, then gone (or ``REMOVE_FAILED``)."""
        with self.fleet.lock:
            self.rcv3.settle_all()
            self.rcv3.remove(resource_id, after=after, fail=fail)

    def set_v3_status(self, resource_id: str, status: str, detail: str | None = None) -> None:
        """Set a v3.0 resource's status now, served exactly as given (``" active "`` too)."""
        with self.fleet.lock:
            self.rcv3.settle_all()
            self.rcv3.set_status(resource_id, status, detail)

    # --- faults and tokens ----------------------------------------------------------------

    def add_fault(self, fault: Fault) -> str:
        """Inject a fault; returns its id."""
        return self._faults.add(fault)

    def remove_fault(self, fid: str) -> None:
        """Remove one fault (KeyError when unknown)."""
        self._faults.remove(fid)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def faults(self) -> list[dict]:
        """The active faults with ids and remaining counts."""
        return self._faults.listing()

    def issue_token(self, account: SimAccount) -> tuple[str, float]:
        """A new token for the account and its expiry time."""
        token = uuid.uuid4().hex
        expires = self.clock() + self.token_lifetime
        with self._lock:
            self._tokens[token] = (account.name, expires)
            self._issued.append(token)
        return token, expires

    def issued_tokens(self) -> list[str]:
        """Every token issued so far (the latest 100,000), revoked or not."""
        with self._lock:
            return list(self._issued)

    def revoke_tokens(self, account: str | None = None) -> None:
        """Invalidate the tokens already issued (for one account, or all)."""
        with self._lock:
            for token, (name, _) in list(self._tokens.items()):
                if account is None or name == account:
                    del self._tokens[token]

    def token_account(self, token: str | None) -> str | None:
        """The account a valid, unexpired token belongs to."""
        with self._lock:
            entry = self._tokens.get(token or "")
        if entry is None or self.clock() >= entry[1]:
            return None
        return entry[0]

    # --- serving ------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in daemon threads; returns the base URL."""
        self.base_url = self._service.bind(host, port)
        self._service.run()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and stepping."""
        self._service.stop()

    def __enter__(self) -> Simulator:
        if not self._service.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, req: Request) -> Reply:
        """Answer one request (called from the HTTP handler threads)."""
        return self._dispatcher.handle(req)
