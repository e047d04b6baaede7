"""The exporter under test, in its own process, with polls triggered on command.

Usage: ``python -m bench.exporter_proc IDENTITY_URL USERNAME API_KEY [SIMULATOR [REPLAY]]``.
It is the exporter ``rackconnect-exporter serve`` runs (``exporter.app.Exporter``: the
store with its publish delay, the supervisor, the HTTP server, the runtime tuning) but
polls only when told to on stdin, so that each poll can be timed alone, its snapshot
published at its end. The request budget
(``--poll.requests-per-minute``) is set out of the way, so no poll waits for its token
bucket; each answer reports how long polls waited anyway.

- ``poll`` / ``poll full``: one poll of every region (``full`` forgets the changes-since
  baseline first); answers wall time, CPU time and request counts (Cloud Servers, and
  RackConnect v3.0 where the account has it) as JSON.
- ``start`` / ``start change`` then ``stop``: full polls in a row, in the background,
  while the client scrapes, every ``INTERVAL`` seconds at most; with ``change`` the
  simulated fleet takes one step before each poll (and the replay forgets what it
  recorded), so each poll renders and compresses changed regions again. ``stop`` waits
  for the running poll and answers every poll's figures.
- ``memory``: peak and current RSS of this process (``VmHWM``/``VmRSS``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request

from exporter.app import Exporter, Web, tune_runtime
from exporter.config import AccountConfig
from exporter.polling.supervisor import PollSettings
from exporter.rackspace.rackconnect_v3 import API as RACKCONNECT_V3


def memory() -> dict[str, int]:
    """Peak and current resident set size in bytes, from /proc."""
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
    return {"rss_peak": out.get("VmHWM", 0), "rss": out.get("VmRSS", 0)}


INTERVAL = 2.0  # seconds from the start of one background poll to the next


def post(url: str, body: bytes) -> None:
    """POST to a control endpoint of the simulator or the replay."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def main() -> None:
    url, username, api_key = sys.argv[1:4]
    simulator, replay = [*sys.argv[4:6], "", ""][:2]
    tune_runtime()
    account = AccountConfig(name=username, username=username, api_key=api_key, identity_url=url)
    settings = PollSettings(interval=60.0, timeout=60.0, requests_per_minute=1e9)
    exporter = Exporter([account], settings)  # as serve: one snapshot per poll
    store = exporter.store
    (poller,) = exporter.supervisor.pollers
    throttled = [0.0]  # seconds polls slept waiting for the token bucket, in total
    sleep = poller.bucket._sleep

    def counted_sleep(seconds: float) -> None:
        throttled[0] += seconds
        sleep(seconds)

    poller.bucket._sleep = counted_sleep
    httpd = exporter.listen(Web(("127.0.0.1", 0)))
    print(json.dumps({"url": httpd.url, **memory()}), flush=True)

    def requests_made(kind: str = "servers") -> int:
        with store._lock:
            return sum(n for (_, _, api, _), n in store._requests.items() if api == kind)

    def timed_poll(full: bool) -> dict:
        if full:
            poller.list_in_full_next()
        before, before_v3 = requests_made(), requests_made(RACKCONNECT_V3)
        waited = throttled[0]
        wall, cpu = time.perf_counter(), time.process_time()
        exporter.supervisor.poll_now()
        wall = time.perf_counter() - wall
        store.flush()  # the snapshot serve would publish PUBLISH_DELAY later
        return {
            "wall": wall,
            "cpu": time.process_time() - cpu,
            "requests": requests_made() - before,
            "requests_v3": requests_made(RACKCONNECT_V3) - before_v3,
            "throttled": throttled[0] - waited,
            "up": all(r.up for a in store.current.accounts for r in a.regions),
        }

    background: list[dict] = []
    thread: threading.Thread | None = None
    stopping = threading.Event()

    def polls(change: bool) -> None:
        while not stopping.is_set():
            began = time.monotonic()
            if change and simulator:
                post(simulator + "/_control/step", b'{"count": 1}')
                if replay:
                    post(replay + "/_replay/forget", b"")
            background.append(timed_poll(True))
            stopping.wait(max(0.0, INTERVAL - (time.monotonic() - began)))

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "poll":
            answer = timed_poll("full" in words)
        elif words[0] == "start":
            background.clear()
            stopping.clear()
            thread = threading.Thread(target=polls, args=("change" in words,))
            thread.start()
            answer = {"started": True}
        elif words[0] == "stop":
            assert thread is not None
            stopping.set()
            thread.join()
            answer = {"polls": background}
        elif words[0] == "memory":
            answer = memory()
        else:
            break
        print(json.dumps(answer), flush=True)
    exporter.stop()


if __name__ == "__main__":
    main()
