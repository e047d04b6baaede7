"""Serving the simulated cloud: the HTTP server's life and the routing of each request.

``Dispatcher`` turns a request into the API it is for (Identity, Cloud Servers, the
RackConnect APIs, the control API), applies the injected faults and the rate limits, and
answers; ``HttpService`` runs the listening server and the background fleet steps.
"""

from __future__ import annotations

import collections
import re
import socket
import threading
import time
from typing import TYPE_CHECKING

from exporter.simulator import control, identity, rackconnect, rcv3_api, servers, versions
from exporter.simulator.faults import Fault, FaultSet
from exporter.simulator.scenario import FIRST_GEN_REGION
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

if TYPE_CHECKING:
    from exporter.simulator.core import Simulator

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


class Dispatcher:
    """Answers each request for ``sim``; owns the rate-limit windows."""

    def __init__(self, sim: Simulator, faults: FaultSet) -> None:
        self.sim = sim
        self._faults = faults
        self._lock = threading.Lock()
        self._hits: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._rc_hits: dict[str, tuple[int, int]] = {}

    def handle(self, req: Request) -> Reply:
        """Answer one request (called from the HTTP handler threads)."""
        if (versions_reply := versions.reply_for(req, req.base)) is not None:
            return versions_reply
        api, account, region, args = self._classify(req)
        if api == "control":
            reply = control.handle(self.sim, req, args[0])
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
        log = self.sim.request_log
        log.append((req.method, req.target, status, account, region))
        if len(log) > REQUEST_LOG_LIMIT:
            del log[: REQUEST_LOG_LIMIT // 2]
        return reply

    def _classify(self, req: Request) -> tuple[str | None, str | None, str | None, tuple]:
        """Which API a request is for, and the account and region it concerns."""
        path = req.path
        if path in ("/v2.0/tokens", "/v2.0/tokens/"):
            acct = self.sim.account_by_username(identity.username_of(req.body) or "")
            return "identity", acct.name if acct else None, None, ()
        if path in ("/v1.0", "/v1.0/"):
            user = req.header("X-Auth-User") or req.header("X-Storage-User") or ""
            acct = self.sim.account_by_username(user)
            return "identity_v1", acct.name if acct else None, None, ()
        if path.startswith("/_control/"):
            return "control", None, None, (path[len("/_control/") :].rstrip("/"),)
        if m := _SERVERS_V2.match(path):
            acct = self.sim.fleet.account_by_tenant(m.group(2))
            return (
                "servers",
                acct.name if acct else None,
                m.group(1).upper(),
                (m.group(2), m.group(3)),
            )
        if m := _SERVERS_V1.match(path):
            acct = self.sim.fleet.account_by_tenant(m.group(1))
            return (
                "servers_v1",
                acct.name if acct else None,
                FIRST_GEN_REGION,
                (m.group(1), m.group(2)),
            )
        if m := _RACKCONNECT.match(path):
            with self.sim.fleet.lock:
                server = self.sim.fleet.by_id.get(m.group(1))
            if server is None:
                return "rackconnect", None, None, (None, m.group(2))
            return "rackconnect", server.account.name, server.region, (server, m.group(2))
        if m := rcv3_api.PATH.match(path):
            acct = self.sim.fleet.account_by_tenant(m.group(2))
            return (
                "rackconnect_v3",
                acct.name if acct else None,
                m.group(1).upper(),
                (m.group(2), m.group(3)),
            )
        return None, None, None, ()

    def _serve_api(
        self, req: Request, api: str, account: str | None, region: str | None, args: tuple
    ) -> Reply:
        self.sim.fleet.apply_due()
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
                reply.date = self.sim.clock() + fault.seconds
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
            now = self.sim.clock()
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
                self.sim, req, None if variant is None else variant or "catalog_object"
            )
        if api == "identity_v1":
            return identity.auth_v1(self.sim, req, missing_token=kind == "missing_key")
        if api == "rackconnect":
            server, endpoint = args
            if server is None or not server.account.rackconnect or server.deleted_at is not None:
                return text_reply(404, "Not Found")
            if self._rackconnect_limited(server.id):
                return text_reply(403, "Forbidden: rate limit of 30 requests per minute exceeded")
            if kind == "missing_key":
                return Reply(200, b"{}") if endpoint != "automation_status" else text_reply(200, "")
            return rackconnect.handle(self.sim, req, server, endpoint, variant is not None)
        if variant is not None and variant not in _SERVER_VARIANTS:
            variant = "servers_object"
        _tenant, rest = args
        if account is None or self.sim.token_account(req.header("X-Auth-Token")) != account:
            return self._unauthorized(api)
        acct = self.sim.fleet.accounts[account]
        if api == "rackconnect_v3":
            assert region is not None
            if region not in acct.rackconnect_v3:
                return text_reply(404, "Not Found")
            return rcv3_api.handle(self.sim, req, account, region, rest, mangle=variant is not None)
        if api == "servers" and region not in acct.regions:
            return fault_reply(api, 404, "The resource could not be found.")
        if api == "servers_v1" and not acct.first_gen:
            return fault_reply(api, 404, "Not Found")
        if req.method == "GET":
            retry_at = self._rate_limited(account)
            if retry_at is not None:
                return over_limit_reply(api, self.sim.clock(), retry_at)
        if api == "servers":
            assert region is not None
            return servers.servers_v2(
                self.sim, req, acct, region, rest, variant=variant, fault_kind=kind
            )
        return servers.servers_v1(self.sim, req, acct, rest, variant)

    def _rate_limited(self, account: str) -> float | None:
        limit = self.sim.rate_limit_per_minute
        if limit is None:
            return None
        now = self.sim.clock()
        with self._lock:
            hits = self._hits[account]
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= limit:
                return hits[0] + 60
            hits.append(now)
        return None

    def _rackconnect_limited(self, server_id: str) -> bool:
        window = int(self.sim.clock() // 60)
        with self._lock:
            start, count = self._rc_hits.get(server_id, (window, 0))
            if start != window:
                count = 0
            self._rc_hits[server_id] = (window, count + 1)
        return count >= RACKCONNECT_PER_MINUTE


class HttpService:
    """The listening HTTP server and, with a step interval, the fleet's stepping thread."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._httpd: SimHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._httpd is not None

    def bind(self, host: str, port: int) -> str:
        """Listen on ``host``:``port`` (0: any free port); returns the base URL."""
        server_class: type[SimHTTPServer] = SimHTTPServer
        if ":" in host:
            server_class = type(
                "SimHTTPServer6", (SimHTTPServer,), {"address_family": socket.AF_INET6}
            )
        httpd = server_class((host, port), Handler)
        httpd.sim = self.sim
        self._httpd = httpd
        shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{httpd.server_address[1]}"

    def run(self) -> None:
        """Serve (and step, with a step interval) in daemon threads."""
        assert self._httpd is not None, "bind() first"
        httpd = self._httpd
        self._stopping.clear()
        serve = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},  # how soon stop() is noticed
            daemon=True,
            name="simulator-http",
        )
        serve.start()
        self._threads = [serve]
        if self.sim.step_interval:
            stepper = threading.Thread(target=self._step_loop, daemon=True, name="simulator-step")
            stepper.start()
            self._threads.append(stepper)

    def _step_loop(self) -> None:
        interval = self.sim.step_interval or 0
        while not self._stopping.wait(interval):
            self.sim.step()

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
