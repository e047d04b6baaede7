"""The exporter under test, in its own process, with polls triggered on command.

Usage: ``python -m bench.exporter_proc IDENTITY_URL USERNAME API_KEY``. It wires the same
parts as ``rackconnect-exporter serve`` (Store, Supervisor, ExporterHTTPServer) but
polls only when told to on stdin, so that each poll can be timed alone:

- ``poll`` / ``poll full``: one poll of every region (``full`` forgets the changes-since
  baseline first); answers wall time, CPU time and request count as JSON.
- ``start full N`` then ``wait``: N full polls in a row, in the background, while the
  client scrapes; ``wait`` answers the first one's figures.
- ``memory``: peak and current RSS of this process (``VmHWM``/``VmRSS``).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from exporter.commands.serve import tune_runtime
from exporter.config import AccountConfig
from exporter.polling.supervisor import PollSettings, Supervisor
from exporter.store import Store
from exporter.web.server import ExporterHTTPServer


def memory() -> dict[str, int]:
    """Peak and current resident set size in bytes, from /proc."""
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
    return {"rss_peak": out.get("VmHWM", 0), "rss": out.get("VmRSS", 0)}


def main() -> None:
    url, username, api_key = sys.argv[1:4]
    tune_runtime()
    account = AccountConfig(name=username, username=username, api_key=api_key, identity_url=url)
    store = Store(60.0)
    supervisor = Supervisor(store, PollSettings(interval=60.0, timeout=60.0))
    supervisor.apply([account])
    (poller,) = supervisor.pollers
    httpd = ExporterHTTPServer(("127.0.0.1", 0), store)
    httpd.start()
    print(json.dumps({"url": httpd.url, **memory()}), flush=True)

    def requests_made() -> int:
        with store._lock:
            return sum(n for (_, _, api, _), n in store._requests.items() if api == "servers")

    def timed_poll(full: bool) -> dict:
        if full:
            for sync in poller._syncs.values():
                sync.reset()
        before = requests_made()
        wall, cpu = time.perf_counter(), time.process_time()
        supervisor.poll_now()
        return {
            "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            "requests": requests_made() - before,
            "up": all(r.up for a in store.current.accounts for r in a.regions),
        }

    background: list[dict] = []
    thread: threading.Thread | None = None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "poll":
            answer = timed_poll("full" in words)
        elif words[0] == "start":
            background.clear()
            count = int(words[2]) if len(words) > 2 else 1

            def polls(count: int = count) -> None:
                for _ in range(count):
                    background.append(timed_poll(True))

            thread = threading.Thread(target=polls)
            thread.start()
            answer = {"started": True}
        elif words[0] == "wait":
            assert thread is not None
            thread.join()
            answer = background[0]
        elif words[0] == "memory":
            answer = memory()
        else:
            break
        print(json.dumps(answer), flush=True)
    httpd.shutdown()
    supervisor.stop()


if __name__ == "__main__":
    main()
