"""The simulated Rackspace cloud: one HTTP server for every API, plus Python controls."""

from __future__ import annotations

import collections
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable

from exporter.simulator import control, identity, rackconnect, servers, versions
from exporter.simulator.faults import Fault, FaultSet
from exporter.simulator.fleet import Fleet
from exporter.simulator.scenario import FIRST_GEN_REGION, Scenario, SimAccount
from exporter.simulator.web import (
    Handler,
    Reply,
    Request,
    SimHTTPServer,
    fault_reply,
    gzip_bomb,
    over_limit_reply,
    request_id,
    text_reply,
)

RACKCONNECT_PER_MINUTE = 30
REQUEST_LOG_LIMIT = 100_000
_SERVERS_V2 = re.compile(r"^/([a-z]{3})/servers/v2/([^/]+)/(.+)$")
_SERVERS_V1 = re.compile(r"^/first/servers/v1\.0/([^/]+)/(.+)$")
_RACKCONNECT = re.compile(r"^/rackconnect/([^/]+)/v1/(.+?)/?$")
_SERVER_VARIANTS = ("servers_object", "metadata_list", "id_int", "name_null", "created_garbage")
# Fault kinds answered normally, then altered.
_ANSWERED = frozenset(
    {"wrong_types", "loop_next", "truncated", "missing_key", "trickle", "skew_date"}
    | {"next_without_since"}
)
_MALFORMED = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"


class Simulator:
    """Identity v2.0/v1.0, Cloud Servers v2/v1.0 and the RackConnect in-server API.

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
        self._hits: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._rc_hits: dict[str, tuple[int, int]] = {}
        self._httpd: SimHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

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
        self.fleet.step()

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

    def _token_account(self, token: str | None) -> str | None:
        with self._lock:
            entry = self._tokens.get(token or "")
        if entry is None or self.clock() >= entry[1]:
            return None
        return entry[0]

    def _rate_limited(self, account: str) -> float | None:
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        now = self.clock()
        with self._lock:
            hits = self._hits[account]
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= limit:
                return hits[0] + 60
            hits.append(now)
        return None

    def _rackconnect_limited(self, server_id: str) -> bool:
        window = int(self.clock() // 60)
        with self._lock:
            start, count = self._rc_hits.get(server_id, (window, 0))
            if start != window:
                count = 0
            self._rc_hits[server_id] = (window, count + 1)
        return count >= RACKCONNECT_PER_MINUTE

    # --- serving ------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in daemon threads; returns the base URL."""
        server_class: type[SimHTTPServer] = SimHTTPServer
        if ":" in host:
            server_class = type(
                "SimHTTPServer6", (SimHTTPServer,), {"address_family": socket.AF_INET6}
            )
        httpd = server_class((host, port), Handler)
        httpd.sim = self
        self._httpd = httpd
        shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        if ":" in shown:
            shown = f"[{shown}]"
        self.base_url = f"http://{shown}:{httpd.server_address[1]}"
        self._stopping.clear()
        serve = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="simulator-http",
        )
        serve.start()
        self._threads = [serve]
        if self.step_interval:
            stepper = threading.Thread(target=self._step_loop, daemon=True, name="simulator-step")
            stepper.start()
            self._threads.append(stepper)
        return self.base_url

    def _step_loop(self) -> None:
        interval = self.step_interval or 0
        while not self._stopping.wait(interval):
            self.step()

    def stop(self) -> None:
        """Stop serving and stepping."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> Simulator:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling ------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        """Answer one request (called from the HTTP handler threads)."""
        if (versions_reply := versions.reply_for(req, req.base)) is not None:
            return versions_reply
        api, account, region, args = self._classify(req)
        if api == "control":
            reply = control.handle(self, req, args[0])
        elif api is None:
            reply = text_reply(404, "Not Found")
        else:
            reply = self._serve_api(req, api, account, region, args)
        if api in ("servers", "servers_v1"):
            reply.headers += [
                ("x-compute-request-id", request_id()),
                ("Via", "1.1 Repose (Repose/2.12)"),
            ]
        status = 0 if reply.action == "reset" else reply.status
        log = self.request_log
        log.append((req.method, req.target, status, account, region))
        if len(log) > REQUEST_LOG_LIMIT:
            del log[: REQUEST_LOG_LIMIT // 2]
        return reply

    def _classify(self, req: Request) -> tuple[str | None, str | None, str | None, tuple]:
        """Which API a request is for, and the account and region it concerns."""
        path = req.path
        if path in ("/v2.0/tokens", "/v2.0/tokens/"):
            acct = self.account_by_username(identity.username_of(req.body) or "")
            return "identity", acct.name if acct else None, None, ()
        if path in ("/v1.0", "/v1.0/"):
            user = req.header("X-Auth-User") or req.header("X-Storage-User") or ""
            acct = self.account_by_username(user)
            return "identity_v1", acct.name if acct else None, None, ()
        if path.startswith("/_control/"):
            return "control", None, None, (path[len("/_control/") :].rstrip("/"),)
        if m := _SERVERS_V2.match(path):
            acct = self.fleet.account_by_tenant(m.group(2))
            return (
                "servers",
                acct.name if acct else None,
                m.group(1).upper(),
                (m.group(2), m.group(3)),
            )
        if m := _SERVERS_V1.match(path):
            acct = self.fleet.account_by_tenant(m.group(1))
            return (
                "servers_v1",
                acct.name if acct else None,
                FIRST_GEN_REGION,
                (m.group(1), m.group(2)),
            )
        if m := _RACKCONNECT.match(path):
            with self.fleet.lock:
                server = self.fleet.by_id.get(m.group(1))
            if server is None:
                return "rackconnect", None, None, (None, m.group(2))
            return "rackconnect", server.account.name, server.region, (server, m.group(2))
        return None, None, None, ()

    def _serve_api(
        self, req: Request, api: str, account: str | None, region: str | None, args: tuple
    ) -> Reply:
        self.fleet.apply_due()
        delay, fault = self._faults.take(api, req.method, req.target, account, region)
        if delay:
            time.sleep(delay)
        kind = fault.kind if fault else None
        if fault is None or kind in _ANSWERED:
            reply = self._answer(req, api, args, account=account, region=region, fault=fault)
            if kind in ("truncated", "trickle"):
                reply.action = "truncate" if kind == "truncated" else "trickle"
                reply.rate = fault.rate if fault else 0.0
            elif kind == "skew_date" and fault:
                reply.date = self.clock() + fault.seconds
            return reply
        if kind == "status":
            return fault_reply(api, fault.status or 500)
        if kind == "reset":
            return Reply(0, action="reset")
        if kind == "malformed_json":
            return Reply(200, _MALFORMED)
        if kind == "gzip_bomb":
            return Reply(200, gzip_bomb(), [("Content-Encoding", "gzip")])
        if kind == "rate_limit":
            now = self.clock()
            return over_limit_reply(
                api,
                now,
                now + fault.retry_after,
                status=fault.status or 413,
                retry_after_format=fault.retry_after_format,
                body_key=fault.body_key,
            )
        # kind == "unauthorized"
        if api == "identity":
            return fault_reply(api, 401, identity.BAD_PASSWORD)
        if api == "identity_v1":
            return fault_reply(api, 401, "Bad username or password")
        return self._unauthorized(api)

    def _unauthorized(self, api: str) -> Reply:
        if api == "servers":
            return fault_reply(
                api,
                401,
                "This server could not verify that you are authorized to access the document "
                "you requested. Either you supplied the wrong credentials (e.g., bad password), "
                "or your browser does not understand how to supply the credentials required.",
            )
        return fault_reply(api, 401, "Unauthorized")

    def _answer(
        self,
        req: Request,
        api: str,
        args: tuple,
        *,
        account: str | None,
        region: str | None,
        fault: Fault | None,
    ) -> Reply:
        kind = fault.kind if fault else None
        variant = None
        if kind == "wrong_types":
            variant = fault.variant if fault and fault.variant else ""
        if kind == "missing_key" and api not in ("identity_v1", "rackconnect"):
            return Reply(200, b"{}")
        if api == "identity":
            return identity.tokens_v2(
                self, req, None if variant is None else variant or "catalog_object"
            )
        if api == "identity_v1":
            return identity.auth_v1(self, req, missing_token=kind == "missing_key")
        if api == "rackconnect":
            server, endpoint = args
            if server is None or not server.account.rackconnect or server.deleted_at is not None:
                return text_reply(404, "Not Found")
            if self._rackconnect_limited(server.id):
                return text_reply(403, "Forbidden: rate limit of 30 requests per minute exceeded")
            if kind == "missing_key":
                return Reply(200, b"{}") if endpoint != "automation_status" else text_reply(200, "")
            return rackconnect.handle(self, req, server, endpoint, variant is not None)
        if variant is not None and variant not in _SERVER_VARIANTS:
            variant = "servers_object"
        _tenant, rest = args
        if account is None or self._token_account(req.header("X-Auth-Token")) != account:
            return self._unauthorized(api)
        acct = self.fleet.accounts[account]
        if api == "servers" and region not in acct.regions:
            return fault_reply(api, 404, "The resource could not be found.")
        if api == "servers_v1" and not acct.first_gen:
            return fault_reply(api, 404, "Not Found")
        if req.method == "GET":
            retry_at = self._rate_limited(account)
            if retry_at is not None:
                return over_limit_reply(api, self.clock(), retry_at)
        if api == "servers":
            assert region is not None
            return servers.servers_v2(
                self, req, acct, region, rest, variant=variant, fault_kind=kind
            )
        return servers.servers_v1(self, req, acct, rest, variant)
