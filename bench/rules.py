"""What the shipped rules and dashboards cost Prometheus at fleet scale.

    python -m bench.rules [--servers 10000,50000] [--evaluations 20] [--interval 15]
                          [--rules FILE] [--dashboards DIR]

For each fleet size it starts the scale simulator, ``rackconnect-exporter serve`` against it
and Debian's Prometheus (scrape and evaluation every ``--interval`` seconds, the rules file
loaded, a temporary TSDB, all on 127.0.0.1). Once Prometheus holds the whole fleet it reads
``/api/v1/rules`` until every group has been evaluated ``--evaluations`` times, and reports
each group's median and max evaluation time with its five slowest rules (by median), the
head series, then times every dashboard target as an instant query and over the last 5
minutes (step: the interval), and every variable's label values, through the HTTP API. Variables
with All get ``.*``, the others their first value. The machine's load comes with the
figures: on a shared machine they are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCALE_USER = ("scale-user", "scale0123456789abcdef0123456789ab")
REPEATS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, params: dict[str, Any] | None = None) -> Any:
    """The ``data`` of a Prometheus API answer (or the body of any other path)."""
    query = "?" + urllib.parse.urlencode(params, doseq=True) if params else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}{query}", timeout=120) as resp:
        body = resp.read()
    return json.loads(body)["data"] if path.startswith("/api/") else body


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        time.sleep(2)
    raise RuntimeError(f"timed out waiting for {what}")


def alive(procs: list[subprocess.Popen[bytes]], logs: str) -> bool:
    """True, or an error with the log of the first child that exited."""
    for number, proc in enumerate(procs):
        if proc.poll() is not None:
            log = (Path(logs) / f"{number}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log}")
    return True


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def evaluations(port: int, count: int, interval: float) -> dict[str, dict[str, Any]]:
    """Per group: the evaluation times of the group and of each rule, ``count`` evaluations."""
    seen: dict[str, dict[str, Any]] = {}
    while not seen or min(len(g["times"]) for g in seen.values()) < count:
        for group in get(port, "/api/v1/rules")["groups"]:
            mine = seen.setdefault(group["name"], {"last": None, "times": [], "rules": {}})
            if group["lastEvaluation"] in (mine["last"], "0001-01-01T00:00:00Z"):
                continue
            if mine["last"] is not None:  # the first one read may predate the fleet
                mine["times"].append(group["evaluationTime"])
                for rule in group["rules"]:
                    name = rule.get("name")
                    mine["rules"].setdefault(name, []).append(rule["evaluationTime"])
            mine["last"] = group["lastEvaluation"]
        time.sleep(interval / 3)
    return seen


def variables(port: int, board: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Values for the board's variables, and the timing of each variable's query."""
    values: dict[str, str] = {}
    timings = []
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", fill(var["definition"], values))
        assert match, var["definition"]
        series, label = match.groups()
        times, found = [], []
        for _ in range(REPEATS):
            began = time.perf_counter()
            found = get(port, f"/api/v1/label/{label}/values", {"match[]": series})
            times.append(time.perf_counter() - began)
        timings.append({"query": f"variable {var['name']}", "instant": times, "rows": len(found)})
        values[var["name"]] = ".*" if var.get("includeAll") else (found or [""])[0]
    return values, timings


def fill(expr: str, values: dict[str, str]) -> str:
    expr = re.sub(r"\$\{(\w+)\}", r"$\1", expr)
    for name, value in {"__rate_interval": "1m", "__interval": "15s", **values}.items():
        expr = expr.replace(f"${name}", value)
    return expr


def timed(port: int, path: str, params: dict[str, Any]) -> tuple[list[float], int]:
    times, rows = [], 0
    for _ in range(REPEATS):
        began = time.perf_counter()
        rows = len(get(port, path, params)["result"])
        times.append(time.perf_counter() - began)
    return times, rows


def dashboard_queries(port: int, folder: Path, interval: float) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        values, timings = variables(port, board)
        out += [{"board": path.stem, **t} for t in timings]
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr, now = fill(target["expr"], values), time.time()
                instant, rows = timed(port, "/api/v1/query", {"query": expr, "time": now})
                rng, range_rows = timed(
                    port,
                    "/api/v1/query_range",
                    {"query": expr, "start": now - 300, "end": now, "step": interval},
                )
                query = f"{panel['title']} {target['refId']}"
                out.append(
                    {"board": path.stem, "query": query, "instant": instant, "range": rng}
                    | {"rows": max(rows, range_rows)}
                )
    return out


def measure(
    servers: int, rules: Path, dashboards: Path, count: int, interval: float
) -> dict[str, Any]:
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sim_port, exp_port, prom_port = free_port(), free_port(), free_port()

        def start(*args: str, env: dict[str, str] | None = None) -> None:
            log = open(Path(tmp) / f"{len(procs)}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(args, stdout=log, stderr=log, env=env))

        try:
            cli = [sys.executable, "-m", "exporter"]
            start(
                *cli, "simulate", "--scenario=scale", f"--servers={servers}", "--step-interval=0",
                f"--web.listen-address=127.0.0.1:{sim_port}",
            )  # fmt: skip
            start(
                *cli, "serve", f"--web.listen-address=127.0.0.1:{exp_port}",
                "--poll.requests-per-minute=100000",
                env={**os.environ, "RACKSPACE_USERNAME": SCALE_USER[0],
                     "RACKSPACE_API_KEY": SCALE_USER[1],
                     "RACKSPACE_IDENTITY_URL": f"http://127.0.0.1:{sim_port}/v2.0/"},
            )  # fmt: skip
            config = Path(tmp) / "prometheus.yml"
            config.write_text(
                json.dumps(
                    {
                        "global": {
                            "scrape_interval": f"{interval:g}s",
                            "evaluation_interval": f"{interval:g}s",
                        },
                        "rule_files": [str(rules.resolve())],
                        "scrape_configs": [
                            {
                                "job_name": "rackconnect-exporter",
                                "static_configs": [{"targets": [f"127.0.0.1:{exp_port}"]}],
                            }
                        ],
                    }
                )
            )
            start(
                "prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp}/tsdb",
                f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
            )  # fmt: skip
            count_query = {"query": 'count(rackconnect_server_info{job="rackconnect-exporter"})'}
            wait_for(
                lambda: (
                    alive(procs, tmp)
                    and any(
                        float(r["value"][1]) >= servers
                        for r in get(prom_port, "/api/v1/query", count_query)["result"]
                    )
                ),
                900,
                "the whole fleet in Prometheus",
            )
            load_before = load()
            groups = evaluations(prom_port, count, interval)
            head = get(prom_port, "/api/v1/status/tsdb")["headStats"]["numSeries"]
            queries = dashboard_queries(prom_port, dashboards, interval)
            return {
                "servers": servers,
                "load": [load_before, load()],
                "head_series": head,
                "groups": {
                    n: {"times": g["times"], "rules": g["rules"]} for n, g in groups.items()
                },
                "queries": queries,
            }
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(30)


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} / {max(values) * 1000:.0f}"


def report(result: dict[str, Any]) -> str:
    lines = [
        f"### {result['servers']:,} servers",
        "",
        f"Head series {result['head_series']:,}; load average (1, 5, 15 min) "
        f"{result['load'][0]} at the start, {result['load'][1]} at the end.",
        "",
        "| group / rule | evaluations | median / max ms |",
        "| --- | ---: | ---: |",
    ]
    for name, group in result["groups"].items():
        lines.append(f"| **{name}** | {len(group['times'])} | {ms(group['times'])} |")
        slowest = sorted(group["rules"].items(), key=lambda kv: -statistics.median(kv[1]))
        lines += [f"| {rule} | {len(t)} | {ms(t)} |" for rule, t in slowest[:5]]
    lines += [
        "",
        "| dashboard query | series | instant median / max ms | 5 min range median / max ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for q in result["queries"]:
        rng = ms(q["range"]) if "range" in q else ""
        lines.append(f"| {q['board']}: {q['query']} | {q['rows']} | {ms(q['instant'])} | {rng} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__)
    parser.add_argument("--servers", default="10000,50000", help="default: %(default)s")
    parser.add_argument("--evaluations", type=int, default=20, help="default: %(default)s")
    parser.add_argument(
        "--interval", type=float, default=15, help="scrape and evaluation, s (default: %(default)s)"
    )
    parser.add_argument(
        "--rules", type=Path, default=REPO / "deploy/prometheus/rackconnect-alerts.yml"
    )
    parser.add_argument("--dashboards", type=Path, default=REPO / "grafana/dashboards")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the children on the way out
    results = []
    for servers in (int(n) for n in args.servers.split(",")):
        results.append(
            measure(servers, args.rules, args.dashboards, args.evaluations, args.interval)
        )
        print(report(results[-1]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
