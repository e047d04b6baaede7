"""``POST /-/reload``: the configuration reloaded as SIGHUP does, for reloader sidecars."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
import yaml

from exporter.store import Store
from exporter.web.server import ExporterHTTPServer
from tests.expo_helpers import samples, series, value
from tests.helpers import CLEAN_ENV, assert_stops_on_sigterm, free_port
from tests.ops_helpers import REPO, load_yaml
from tests.test_deploy import K8S_VERSION, kubernetes_validate
from tests.test_lifecycle import config_text, regions_of

PASSWORD = "reloader secret"
AUTH = ("reloader", PASSWORD)


@pytest.fixture
def served() -> Iterator[Callable[[Callable[[], list[str]] | None], str]]:
    """Start an ExporterHTTPServer with this reload callback; its URL."""
    servers: list[ExporterHTTPServer] = []

    def start(reload: Callable[[], list[str]] | None) -> str:
        httpd = ExporterHTTPServer(("127.0.0.1", 0), Store(60), reload=reload)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return httpd.url

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_post_answers_what_the_reload_said(served) -> None:
    answers: list[list[str]] = [[], ["accounts[0].regoins: unknown key", "second problem"]]
    url = served(lambda: answers.pop(0)) + "/-/reload"
    applied = requests.post(url, timeout=5)
    assert (applied.status_code, applied.text) == (200, "Reloaded\n")
    refused = requests.post(url, timeout=5)
    assert refused.status_code == 500
    assert refused.text.splitlines()[1:] == ["accounts[0].regoins: unknown key", "second problem"]
    assert answers == []


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_other_methods_are_not_allowed_and_do_not_reload(served, method: str) -> None:
    calls: list[int] = []
    url = served(lambda: calls.append(1) or []) + "/-/reload"
    answer = requests.request(method, url, timeout=5)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert calls == []


def test_without_a_reload_there_is_no_reload_endpoint(served) -> None:
    """The agent has no configuration file: GET is 404, POST 405, like any other path."""
    url = served(None) + "/-/reload"
    assert requests.get(url, timeout=5).status_code == 404
    posted = requests.post(url, timeout=5)
    assert (posted.status_code, posted.headers["Allow"]) == (405, "GET, HEAD")


def scrape(port: int) -> dict:
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", auth=AUTH, timeout=5)
    assert answer.status_code == 200
    return samples(answer.content)


def wait_metrics(port: int, check: Callable[[dict], bool], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            parsed = scrape(port)
            if check(parsed):
                return parsed
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the metrics did not change as expected"
        time.sleep(0.1)


@pytest.mark.slow
def test_post_reload_applies_refuses_and_needs_credentials(sim, tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(config_text(sim, {"acme": ["ORD", "DFW"]}))
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web.write_text(f"basic_auth_users:\n  reloader: '{hashed}'\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config.file", str(path),
         "--web.config.file", str(web), "--web.listen-address", f"127.0.0.1:{port}",
         "--poll.interval", "500ms"],
        env=CLEAN_ENV,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    reload = f"http://127.0.0.1:{port}/-/reload"
    try:
        wait_metrics(port, lambda p: regions_of(p) == {("acme", "ORD"), ("acme", "DFW")})
        path.write_text(config_text(sim, {"acme": ["ORD"]}))
        assert requests.post(reload, timeout=5).status_code == 401
        assert requests.get(reload, auth=AUTH, timeout=5).status_code == 405
        time.sleep(0.2)
        assert regions_of(scrape(port)) == {("acme", "ORD"), ("acme", "DFW")}  # not reloaded

        applied = requests.post(reload, auth=AUTH, timeout=10)
        assert (applied.status_code, applied.text) == (200, "Reloaded\n")
        after = wait_metrics(port, lambda p: regions_of(p) == {("acme", "ORD")})
        assert series(after, "rackconnect_server_info", region="DFW") == []
        assert value(after, "rackconnect_config_last_reload_successful") == 1

        path.write_text("accounts:\n  - name: x\n    regoins: [ORD]\n")
        refused = requests.post(reload, auth=AUTH, timeout=10)
        assert refused.status_code == 500
        assert "accounts[0].regoins: unknown key" in refused.text
        failed = wait_metrics(
            port, lambda p: value(p, "rackconnect_config_last_reload_successful") == 0
        )
        assert regions_of(failed) == {("acme", "ORD")}
        polled = value(failed, "rackconnect_last_successful_poll_timestamp_seconds", region="ORD")
        assert polled is not None
        wait_metrics(  # the old configuration is still polled
            port,
            lambda p: (
                (value(p, "rackconnect_last_successful_poll_timestamp_seconds", region="ORD") or 0)
                > polled
            ),
        )
        assert_stops_on_sigterm(proc)
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert 'msg="config reloaded" added="" removed="" changed=acme' in stderr
    assert 'msg="config reload failed, keeping the running configuration"' in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_the_documented_reloader_sidecar_is_a_valid_deployment() -> None:
    """docs/deployment.md's patch, applied to the base Deployment, is valid Kubernetes, and
    its sidecar posts to the exporter's /-/reload and watches the file the exporter reads."""
    text = (REPO / "docs" / "deployment.md").read_text()
    section = text.split("### A config file from a ConfigMap, reloaded by a sidecar\n", 1)[1]
    patch = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    deployment = load_yaml(REPO / "deploy" / "kubernetes" / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    by_name = {c["name"]: c for c in pod["containers"]}
    for container in patch["containers"]:
        base = by_name.setdefault(container["name"], {})
        mounts = base.get("volumeMounts", []) + container.pop("volumeMounts", [])
        base.update(container, volumeMounts=mounts)
    pod["containers"] = list(by_name.values())
    pod["volumes"] = pod.get("volumes", []) + patch["volumes"]
    kubernetes_validate().validate(deployment, K8S_VERSION, strict=True)

    exporter, reloader = by_name["exporter"], by_name["config-reloader"]
    port = exporter["ports"][0]["containerPort"]
    assert f"--webhook-url=http://127.0.0.1:{port}/-/reload" in reloader["args"]
    (config_file,) = [a.split("=", 1)[1] for a in exporter["args"] if "--config.file=" in a]
    (watched,) = [a.split("=", 1)[1] for a in reloader["args"] if "--volume-dir=" in a]
    assert Path(config_file).parent == Path(watched)

    def volume_at(container: dict, path: str) -> str:
        return next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == path)

    assert volume_at(exporter, watched) == volume_at(reloader, watched) == "config"
