"""``wait SERVER_ID`` against the simulated cloud: state changes, verdicts, exit codes."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest

from exporter.commands.wait import Waiter
from exporter.config import Config
from exporter.simulator import Fault
from exporter.simulator.scenario import rc_metadata
from tests.conftest import account_config
from tests.helpers import run

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S")


class Recorder:
    """A sleep that records pauses and may act on the cloud after a given pause."""

    def __init__(self, actions: dict[int, object] | None = None) -> None:
        self.pauses: list[float] = []
        self.actions = actions or {}

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        action = self.actions.get(len(self.pauses))
        if action is not None:
            action()  # type: ignore[operator]


def waiter(sim, server_id: str, *accounts: str, **options: object) -> tuple[Waiter, io.StringIO]:
    config = Config(tuple(account_config(sim, a) for a in accounts or ("acme",)))
    out = io.StringIO()
    options.setdefault("interval", 0.05)
    options.setdefault("timeout", 20.0)
    w = Waiter(config, server_id, out=out, err=io.StringIO(), **options)  # type: ignore[arg-type]
    return w, out


def lines(out: io.StringIO) -> list[str]:
    text = out.getvalue().splitlines()
    assert all(LINE.match(line) for line in text), text
    return [line.split(" ", 1)[1] for line in text]


@pytest.mark.slow
def test_waits_through_deploying_deployed_and_managed_complete(sim) -> None:
    sid = sim.add_server("acme", "ORD", "pipeline-01", {})
    w, out = waiter(sim, sid)
    steps = [
        rc_metadata("DEPLOYING"),
        rc_metadata("DEPLOYED"),
        {"rax_service_level_automation": "In Progress"},
        {"rax_service_level_automation": "Complete"},
    ]

    def evolve() -> None:
        for metadata in steps:
            time.sleep(0.4)
            sim.set_metadata(sid, metadata)

    thread = threading.Thread(target=evolve)
    thread.start()
    assert w.run() == 0
    thread.join()
    where = f"acme/ORD server {sid} (pipeline-01): status=ACTIVE"
    assert lines(out)[:-1] == [
        f"{where} rackconnect=- managed=- ready=no",
        f"{where} rackconnect=DEPLOYING managed=- ready=no",
        f"{where} rackconnect=DEPLOYED managed=- ready=no",
        f"{where} rackconnect=DEPLOYED managed=In Progress ready=no",
        f"{where} rackconnect=DEPLOYED managed=Complete ready=yes",
    ]
    # both were seen finishing, so both are timed from the server's creation
    assert re.fullmatch(
        rf"acme/ORD server {sid}: ready after \d+s: RackConnect \d+s, Managed Operations \d+s",
        lines(out)[-1],
    )
    # Only that server was read, never the fleet.
    reads = [e[1] for e in sim.request_log if "/servers/" in e[1]]
    assert reads
    assert all(r.endswith(f"/servers/{sid}") for r in reads)


def test_failed_exits_1(sim) -> None:
    sid = sim.add_server("acme", "DFW", "doomed", rc_metadata("DEPLOYING"))
    w, out = waiter(sim, sid)
    sleep = Recorder({2: lambda: sim.set_metadata(sid, rc_metadata("FAILED"))})
    w.sleep = sleep
    assert w.run() == 1
    assert lines(out)[-1] == f"acme/DFW server {sid}: failed: RackConnect automation is FAILED"
    assert len(sleep.pauses) == 2


@pytest.mark.parametrize(
    ("metadata", "wanted", "code", "last"),
    [
        (
            rc_metadata("UNPROCESSABLE", managed="Complete"),
            "ready",
            1,
            "failed: RackConnect automation is UNPROCESSABLE",
        ),
        (
            rc_metadata("UNPROCESSABLE", managed="Complete"),
            "rackconnect",
            1,
            "failed: RackConnect automation is UNPROCESSABLE",
        ),
        (
            rc_metadata("UNPROCESSABLE", managed="Complete"),
            "managed",
            0,
            "Managed Operations automation done",
        ),
        (
            rc_metadata("DEPLOYED", managed="Build Error"),
            "ready",
            1,
            "failed: Managed Operations automation is Build Error",
        ),
        (
            rc_metadata("DEPLOYED", managed="Authentication Error"),
            "managed",
            1,
            "failed: Managed Operations automation is Authentication Error",
        ),
        (
            rc_metadata("DEPLOYED", managed="Build Error"),
            "rackconnect",
            0,
            "RackConnect automation done",
        ),
    ],
)
def test_verdicts(sim, metadata, wanted, code, last) -> None:
    sid = sim.add_server("acme", "IAD", "s", metadata)
    w, out = waiter(sim, sid, wanted=wanted)
    assert w.run() == code
    assert lines(out)[-1].startswith(f"acme/IAD server {sid}: {last}")


def test_server_in_error_status_is_a_failure(sim) -> None:
    sid = sim.add_server("initech", "HKG", "broken", {}, status="ERROR")
    w, out = waiter(sim, sid, "initech")
    assert w.run() == 1
    assert lines(out)[-1] == f"initech/HKG server {sid}: failed: the server is in status ERROR"


def test_deleted_while_waiting_is_a_failure(sim) -> None:
    sid = sim.add_server("acme", "ORD", "short-lived", rc_metadata("DEPLOYING"))
    w, out = waiter(sim, sid)
    w.sleep = Recorder({1: lambda: sim.delete_server(sid)})
    assert w.run() == 1
    assert lines(out)[-1] == f"acme/ORD server {sid}: failed: the server no longer exists"


def test_timeout_exits_2(sim) -> None:
    sid = sim.add_server("acme", "ORD", "slow", rc_metadata("DEPLOYING"))
    w, out = waiter(sim, sid, timeout=0.5, interval=0.1)
    started = time.monotonic()
    assert w.run() == 2
    assert 0.5 <= time.monotonic() - started < 5
    assert lines(out)[-1] == (
        f"acme/ORD server {sid}: timed out after 500ms: status=ACTIVE rackconnect=DEPLOYING "
        "managed=- ready=no"
    )


def test_not_found_exits_3_after_one_search_without_grace(sim) -> None:
    w, _ = waiter(sim, "00000000-0000-4000-8000-000000000000", "acme", "globex", not_found_grace=0)
    err = io.StringIO()
    w.report.err = err
    assert w.run() == 3
    assert err.getvalue() == (
        "wait: server 00000000-0000-4000-8000-000000000000 not found after 0ms (searched acme/DFW, "
        "acme/IAD, acme/ORD, globex/DFW, globex/SYD)\n"
    )
    lookups = [e for e in sim.request_log if "00000000-0000" in e[1]]
    assert len(lookups) == 5


def test_bad_credentials_exit_3(sim) -> None:
    config = Config((account_config(sim, "acme", api_key="wrong"),))
    err = io.StringIO()
    w = Waiter(config, "whatever", out=io.StringIO(), err=err, interval=0.05, timeout=5)
    assert w.run() == 3
    assert err.getvalue().startswith("wait: authentication failed: acme: POST ")
    assert "wrong" not in err.getvalue()


def test_region_limits_the_search(sim) -> None:
    sid = sim.add_server("acme", "DFW", "here", rc_metadata("DEPLOYED", managed="Complete"))
    w, _ = waiter(sim, sid, region="ord", not_found_grace=0)
    err = io.StringIO()
    w.report.err = err
    assert w.run() == 3
    assert err.getvalue() == f"wait: server {sid} not found after 0ms (searched acme/ORD)\n"
    w, out = waiter(sim, sid, region="DFW")
    assert w.run() == 0
    assert re.fullmatch(rf"acme/DFW server {sid}: ready after \d+s", lines(out)[-1])


def test_first_gen_server(sim) -> None:
    sid = sim.add_server("acme", "GLOBAL", "legacy-new", {}, generation="first")
    w, out = waiter(sim, sid)
    w.sleep = Recorder({2: lambda: sim.set_metadata(sid, rc_metadata("DEPLOYED"))})
    assert w.run() == 0
    # acme has Managed Operations, which first-gen servers never report.
    assert lines(out) == [
        f"acme/GLOBAL server {sid} (legacy-new): status=ACTIVE rackconnect=- managed=- ready=no",
        f"acme/GLOBAL server {sid} (legacy-new): status=ACTIVE rackconnect=DEPLOYED managed=- "
        "ready=yes",
        f"acme/GLOBAL server {sid}: ready",
    ]
    assert any(f"/first/servers/v1.0/100001/servers/{sid}" in e[1] for e in sim.request_log)


def test_first_gen_through_identity_v1(sim) -> None:
    legacy = next(s for s in sim.servers("acme") if s["name"] == "legacy-app-01")
    config = Config(
        (account_config(sim, "acme", identity_url=sim.auth_v1_url, generations=("first",)),)
    )
    out = io.StringIO()
    w = Waiter(config, legacy["id"], out=out, err=io.StringIO(), interval=0.05, timeout=5)
    assert w.run() == 1
    assert lines(out)[-1] == (
        f"acme/GLOBAL server {legacy['id']}: failed: RackConnect automation is FAILED"
    )


def test_backoff_grows_and_restarts_on_change(sim) -> None:
    sid = sim.add_server("acme", "ORD", "b", rc_metadata("DEPLOYING"))
    w, _ = waiter(sim, sid, interval=5.0, timeout=3600.0, progress_interval=7200.0)
    w.sleep = Recorder(
        {
            4: lambda: sim.set_metadata(sid, rc_metadata("DEPLOYED")),
            16: lambda: sim.set_metadata(sid, {"rax_service_level_automation": "Complete"}),
        }
    )
    assert w.run() == 0
    pauses = w.sleep.pauses
    assert pauses[:6] == [5.0, 7.5, 11.25, 16.875, 5.0, 7.5]
    assert max(pauses) == 60.0  # capped
    assert len(pauses) == 16


def test_retry_after_is_honoured(sim) -> None:
    sid = sim.add_server("acme", "ORD", "busy", rc_metadata("DEPLOYING"))
    w, out = waiter(sim, sid, interval=0.05)
    err = io.StringIO()
    w.report.err = err

    def limit() -> None:
        sim.add_fault(
            Fault(
                kind="rate_limit",
                api="servers",
                path_contains=sid,
                count=3,  # the client's own retries see it too
                retry_after=2,
                retry_after_format="seconds",
            )
        )

    w.sleep = Recorder(
        {1: limit, 3: lambda: sim.set_metadata(sid, rc_metadata("DEPLOYED", managed="Complete"))}
    )
    assert w.run() == 0
    # The client waited Retry-After between its attempts, then wait paused as long again.
    assert w.sleep.pauses[1] == pytest.approx(2, abs=1)
    assert "HTTP 413" in err.getvalue()
    limited = [e for e in sim.request_log if e[2] == 413]
    assert len(limited) == 3
    assert re.fullmatch(rf"acme/ORD server {sid}: ready after \d+s(: .+)?", lines(out)[-1])


def test_transient_errors_do_not_end_the_wait(sim) -> None:
    sid = sim.add_server("acme", "ORD", "flaky", rc_metadata("DEPLOYED", managed="Pending"))
    w, _ = waiter(sim, sid)
    w.sleep = Recorder(
        {
            1: lambda: sim.add_fault(Fault(kind="reset", api="servers", count=5)),
            3: lambda: sim.set_metadata(sid, {"rax_service_level_automation": "Complete"}),
        }
    )
    assert w.run() == 0


@pytest.mark.slow
def test_exit_codes_from_the_command_line(sim) -> None:
    acme = next(a for a in sim.accounts if a.name == "acme")
    env = {
        "RACKSPACE_USERNAME": acme.username,
        "RACKSPACE_API_KEY": acme.api_key,
        "RACKSPACE_IDENTITY_URL": sim.identity_url,
    }
    ready = sim.add_server("acme", "ORD", "ok", rc_metadata("DEPLOYED", managed="Complete"))
    failed = sim.add_server("acme", "ORD", "bad", rc_metadata("FAILED"))
    slow = sim.add_server("acme", "ORD", "slow", rc_metadata("DEPLOYING"))
    done = run("wait", ready, "--for", "ready", "--timeout", "30m", env=env)
    assert done.returncode == 0
    last = done.stdout.splitlines()[-1].split(" ", 1)[1]
    assert re.fullmatch(rf"acme-ops/ORD server {ready}: ready after \d+s", last)
    assert run("wait", failed, env=env).returncode == 1
    timed_out = run("wait", slow, "--interval", "100ms", "--timeout", "1s", env=env)
    assert timed_out.returncode == 2
    assert "timed out after 1s" in timed_out.stdout
    missing = run("wait", "nope", "--region", "ORD", "--not-found-grace", "1s", env=env)
    assert (missing.returncode, missing.stderr) == (
        3,
        "wait: server nope not found after 1s (searched acme-ops/ORD)\n",
    )
    assert run("wait", ready, "--for", "everything", env=env).returncode == 3
    assert run("wait", ready).returncode == 3  # no credentials
