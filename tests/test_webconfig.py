"""``--web.config.file``: TLS, client certificates, basic auth, headers, reloads."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.store import Store
from exporter.web import security as webconfig
from exporter.web import server as web
from exporter.web.basicauth import BasicAuth
from exporter.web.security import WebConfigError, WebSecurity, load_web_config
from exporter.web.server import ExporterHTTPServer
from tests.helpers import CLEAN_ENV, STOP_POLL, free_port, wait_until
from tests.tls_helpers import CA

PASSWORD = "correct horse battery staple"
TLS_AB = "tls_server_config:\n  cert_file: a\n  key_file: b\n"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca, clients, strangers = CA("server CA"), CA("client CA"), CA("someone else's CA")
    cert, key = ca.issue(tmp_path, "server", server=True)
    client_cert, client_key = clients.issue(tmp_path, "client", server=False)
    stranger_cert, stranger_key = strangers.issue(tmp_path, "stranger", server=False)
    return {
        "ca": ca.write(tmp_path / "ca.crt"),
        "client_ca": clients.write(tmp_path / "client-ca.crt"),
        "cert": cert,
        "key": key,
        "client": (client_cert, client_key),
        "stranger": (stranger_cert, stranger_key),
        "dir": tmp_path,
    }


class Served:
    """An ExporterHTTPServer with a web config, in a thread."""

    def __init__(self, path: Path, check_interval: float = 0.0) -> None:
        self.security = WebSecurity(str(path), check_interval=check_interval)
        self.httpd = ExporterHTTPServer(("127.0.0.1", 0), Store(60), security=self.security)
        self.httpd.start(STOP_POLL)

    @property
    def url(self) -> str:
        return self.httpd.url

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator:
    started: list[Served] = []

    def start(path: Path, **kw: float) -> Served:
        served = Served(path, **kw)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tls_config(pki: dict, extra: str = "") -> str:
    return (
        f"tls_server_config:\n  cert_file: {pki['cert'].name}\n  key_file: {pki['key'].name}\n"
        + extra
    )


def test_tls_serves_every_endpoint(pki, serve) -> None:
    served = serve(write(pki["dir"] / "web.yml", tls_config(pki)))
    assert served.url.startswith("https://127.0.0.1:")
    for path in ("/metrics", "/-/healthy", "/"):
        assert requests.get(served.url + path, verify=pki["ca"], timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(served.url + "/metrics", timeout=5)  # not trusted without the CA
    plain = served.url.replace("https://", "http://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(plain + "/metrics", timeout=5)


def test_min_version_tls13_refuses_tls12(pki, serve) -> None:
    served = serve(write(pki["dir"] / "web.yml", tls_config(pki, "  min_version: TLS13\n")))
    context = ssl.create_default_context(cafile=pki["ca"])
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    host, port = served.httpd.server_address[:2]
    with (
        pytest.raises(ssl.SSLError),
        context.wrap_socket(
            socket.create_connection((host, port), timeout=5), server_hostname=host
        ),
    ):
        pass
    assert requests.get(served.url + "/-/healthy", verify=pki["ca"], timeout=5).ok


def test_client_certificate_required(pki, serve) -> None:
    extra = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n"
    served = serve(write(pki["dir"] / "web.yml", tls_config(pki, extra)))
    url = served.url + "/metrics"
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=pki["ca"], timeout=5)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=pki["ca"], cert=pki["stranger"], timeout=5)
    assert requests.get(url, verify=pki["ca"], cert=pki["client"], timeout=5).status_code == 200
    # a refused handshake is not worth more than a debug line, and the server goes on
    assert requests.get(url, verify=pki["ca"], cert=pki["client"], timeout=5).status_code == 200


def test_client_certificate_verified_if_given(pki, serve) -> None:
    extra = "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: client-ca.crt\n"
    served = serve(write(pki["dir"] / "web.yml", tls_config(pki, extra)))
    url = served.url + "/metrics"
    assert requests.get(url, verify=pki["ca"], timeout=5).status_code == 200
    assert requests.get(url, verify=pki["ca"], cert=pki["client"], timeout=5).status_code == 200
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=pki["ca"], cert=pki["stranger"], timeout=5)


@pytest.mark.slow
def test_basic_auth_guards_every_path(tmp_path, serve) -> None:
    served = serve(write(tmp_path / "web.yml", f"basic_auth_users:\n  prometheus: '{HASH}'\n"))
    for path in ("/metrics", "/", "/-/healthy", "/-/ready", "/nope"):
        denied = requests.get(served.url + path, timeout=5)
        assert denied.status_code == 401, path
        assert denied.headers["WWW-Authenticate"] == "Basic"
        wrong = requests.get(served.url + path, auth=("prometheus", "wrong"), timeout=5)
        assert wrong.status_code == 401
        nobody = requests.get(served.url + path, auth=("nobody", PASSWORD), timeout=5)
        assert nobody.status_code == 401
    long = requests.get(served.url + "/metrics", auth=("prometheus", "p" * 100), timeout=5)
    assert long.status_code == 401  # longer than bcrypt takes: refused, not a crash
    good = requests.get(served.url + "/metrics", auth=("prometheus", PASSWORD), timeout=5)
    assert good.status_code == 200
    assert "Unauthorized" not in good.text
    head = requests.head(served.url + "/metrics", timeout=5)
    assert head.status_code == 401


def test_bcrypt_answers_are_cached(monkeypatch) -> None:
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: calls.append(1) or real(p, h))
    auth = BasicAuth()
    users = {"prometheus": HASH.encode()}

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    for _ in range(5):
        assert auth.check(users, header("prometheus", PASSWORD))
        assert not auth.check(users, header("prometheus", "wrong"))
    assert len(calls) == 2
    for bad in (
        None,
        "",
        "Bearer x",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert not auth.check(users, bad)
    assert len(calls) == 2
    # a changed hash is a different key: the old answer is not reused
    other = bcrypt.hashpw(b"new", bcrypt.gensalt(rounds=4))
    assert not auth.check({"prometheus": other}, header("prometheus", PASSWORD))
    assert len(calls) == 3


def test_headers_are_added_to_every_answer(tmp_path, serve) -> None:
    text = (
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        "    Strict-Transport-Security: max-age=31536000\n"
    )
    served = serve(write(tmp_path / "web.yml", text))
    for path in ("/metrics", "/nope"):
        response = requests.get(served.url + path, timeout=5)
        assert response.headers["X-Frame-Options"] == "deny"
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n",
            "web.yml:4: tls_server_config.cipher_suites: unknown key",
        ),
        ("basic_auth_user:\n  a: b\n", "web.yml:1: basic_auth_user: unknown key"),
        (
            "http_server_config:\n  http2: true\n",
            "web.yml:2: http_server_config.http2: unknown key",
        ),
        ("basic_auth_users:\n  a: plaintext\n", "basic_auth_users.a: must be a bcrypt hash"),
        ("http_server_config:\n  headers:\n    Server: x\n", "headers.Server: this header cannot"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "must be one of"),
        (
            TLS_AB + "  client_auth_type: RequestClientCert\n",
            "RequestClientCert is not supported",
        ),
        (
            TLS_AB + "  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file: required",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n",
            "tls_server_config.min_version: unknown version 'TLS10'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n",
            "tls_server_config: cannot load cert_file/key_file",
        ),
        ("tls_server_config:\n  key_file: b\n", "tls_server_config.cert_file: missing"),
    ],
)
def test_bad_web_configs_name_the_key(tmp_path, text: str, message: str) -> None:
    path = write(tmp_path / "web.yml", text)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(str(path))
    assert message in str(caught.value)


@pytest.mark.slow
def test_unknown_key_exits_3_naming_it(tmp_path) -> None:
    path = write(
        tmp_path / "web.yml",
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [x]\n",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "--web.config.file",
            str(path),
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        env={**CLEAN_ENV, "RACKSPACE_USERNAME": "u", "RACKSPACE_API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert "tls_server_config.curve_preferences: unknown key" in result.stderr


def test_config_and_certificates_are_reloaded(pki, serve, tmp_path) -> None:
    path = write(pki["dir"] / "web.yml", tls_config(pki))
    served = serve(path)
    assert requests.get(served.url + "/metrics", verify=pki["ca"], timeout=5).status_code == 200
    # a user appears: from the next connection on, answers need the password
    write(path, tls_config(pki) + f"basic_auth_users:\n  prometheus: '{HASH}'\n")
    bump(path)
    assert requests.get(served.url + "/metrics", verify=pki["ca"], timeout=5).status_code == 401
    # the certificate is rotated to one from a new CA
    new_ca = CA("rotated CA")
    new_ca.issue(pki["dir"], "server", server=True)  # overwrites server.crt and server.key
    bump(pki["cert"], pki["key"])
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(served.url + "/metrics", verify=pki["ca"], timeout=5)
    rotated = new_ca.write(tmp_path / "rotated.crt")
    ok = requests.get(
        served.url + "/metrics", verify=rotated, auth=("prometheus", PASSWORD), timeout=5
    )
    assert ok.status_code == 200
    # a broken file keeps the last good configuration
    write(path, "tls_server_config: [\n")
    bump(path)
    kept = requests.get(
        served.url + "/metrics", verify=rotated, auth=("prometheus", PASSWORD), timeout=5
    )
    assert kept.status_code == 200


def bump(*paths: Path) -> None:
    """Move modification times forward, as a later write would."""
    for path in paths:
        stamp = time.time_ns() + 2_000_000_000
        os.utime(path, ns=(stamp, stamp))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "demo", "agent"])
def test_every_serving_command_takes_the_flag(pki, sim, command: str) -> None:
    path = write(
        pki["dir"] / "web.yml", tls_config(pki) + f"basic_auth_users:\n  prometheus: '{HASH}'\n"
    )
    port = free_port()
    args = ["--web.config.file", str(path), "--web.listen-address", f"127.0.0.1:{port}"]
    env = dict(CLEAN_ENV)
    if command == "demo":
        args += ["--simulator.listen-address", "127.0.0.1:0", "--poll.interval", "1s"]
    elif command == "agent":
        server = next(
            s for s in sim.servers("acme") if s["generation"] == "next" and not s["deleted"]
        )
        args += [
            "--rackconnect.region",
            server["region"],
            "--rackconnect.url",
            sim.rackconnect_url(server["id"]),
            "--server.id",
            server["id"],
        ]
    else:
        account = next(a for a in sim.accounts if a.name == "initech")
        env.update(
            RACKSPACE_USERNAME=account.username,
            RACKSPACE_API_KEY=account.api_key,
            RACKSPACE_IDENTITY_URL=sim.identity_url,
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", command, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: (
                requests.get(
                    f"https://127.0.0.1:{port}/-/ready",
                    verify=pki["ca"],
                    auth=("prometheus", PASSWORD),
                    timeout=2,
                ).status_code
                == 200
            ),
            20,
            "ready over TLS with basic auth",
            interval=0.2,
        )
        denied = requests.get(f"https://127.0.0.1:{port}/metrics", verify=pki["ca"], timeout=5)
        assert denied.status_code == 401
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert f"https://127.0.0.1:{port}" in out + err


def test_no_web_config_is_plain_http() -> None:
    security = WebSecurity(None)
    assert not security.tls
    assert security.authorized(None)
    assert webconfig.WebConfig().users == {}


@settings(max_examples=150, deadline=None)
@given(
    header=st.one_of(
        st.text(),
        st.builds(
            lambda raw: "Basic " + base64.b64encode(raw).decode(),
            st.binary(max_size=200),
        ),
        st.builds(
            lambda user, password: (
                "Basic "
                + base64.b64encode(f"{user}:{password}".encode("utf-8", "surrogatepass")).decode()
            ),
            st.sampled_from(["prometheus", "nobody", ""]),
            st.text(max_size=120),
        ),
    )
)
def test_any_authorization_header_is_answered(header: str) -> None:
    assert BasicAuth().check({"prometheus": HASH.encode()}, header) is False


@pytest.mark.slow
def test_a_slow_tls_handshake_is_cut_off(pki, serve, monkeypatch) -> None:
    monkeypatch.setattr(web, "REQUEST_TIMEOUT", 1.0)
    served = serve(write(pki["dir"] / "web.yml", tls_config(pki)))
    host, port = served.httpd.server_address[:2]
    started = time.monotonic()
    with socket.create_connection((host, port)) as sock:
        sock.settimeout(10)
        try:
            for byte in b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100:
                sock.sendall(bytes([byte]))  # a ClientHello, one byte every 0.2 s
                time.sleep(0.2)
            closed = sock.recv(1) == b""
        except OSError:
            closed = True
    assert closed
    assert time.monotonic() - started < 8
    assert requests.get(served.url + "/-/healthy", verify=pki["ca"], timeout=5).ok
