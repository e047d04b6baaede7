"""``healthcheck`` against a real exporter: plain HTTP, TLS, basic auth, nothing listening."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from exporter.commands.healthcheck import PASSWORD_FILE_ENV, USERNAME_ENV, _process_one_flags
from exporter.store import Store
from exporter.web.security import WebSecurity
from exporter.web.server import ExporterHTTPServer
from tests.helpers import STOP_POLL, free_port, run
from tests.tls_helpers import CA

pytestmark = pytest.mark.slow

PASSWORD = "healthcheck password"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


@pytest.fixture
def exporter() -> Iterator:
    """Start an exporter's HTTP server with a web config; yields a starter."""
    started: list[ExporterHTTPServer] = []

    def start(config: Path | None) -> int:
        security = WebSecurity(str(config) if config else None)
        httpd = ExporterHTTPServer(("127.0.0.1", 0), Store(60), security=security)
        httpd.start(STOP_POLL)
        started.append(httpd)
        return httpd.server_address[1]

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def tls_and_auth(tmp_path: Path) -> Path:
    cert, key = CA().issue(tmp_path, "server", server=True)
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {cert.name}\n  key_file: {key.name}\n"
        f"basic_auth_users:\n  prometheus: {HASH}\n"
    )
    return config


def healthcheck(port: int, config: Path | None = None, env: dict[str, str] | None = None):
    flags = ["--web.listen-address", f":{port}"]
    if config is not None:
        flags += ["--web.config.file", str(config)]
    return run("healthcheck", *flags, env=env)


def test_plain_http_healthy(exporter) -> None:
    port = exporter(None)
    result = healthcheck(port)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"healthy: http://127.0.0.1:{port}/-/healthy answered 200\n"


def test_tls_and_basic_auth_with_a_password_file(exporter, tmp_path) -> None:
    config = tls_and_auth(tmp_path)
    port = exporter(config)
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    result = healthcheck(port, config, env={PASSWORD_FILE_ENV: str(secret)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"healthy: https://127.0.0.1:{port}/")
    assert PASSWORD not in result.stdout + result.stderr


def test_basic_auth_without_credentials_is_unhealthy_and_says_why(exporter, tmp_path) -> None:
    config = tls_and_auth(tmp_path)
    port = exporter(config)
    result = healthcheck(port, config)
    assert result.returncode == 1
    assert result.stderr == (
        f"unhealthy: https://127.0.0.1:{port}/-/healthy answered 401 (set {PASSWORD_FILE_ENV})\n"
    )


def test_wrong_password_or_user_is_unhealthy(exporter, tmp_path) -> None:
    config = tls_and_auth(tmp_path)
    port = exporter(config)
    secret = tmp_path / "password"
    secret.write_text("not it")
    assert healthcheck(port, config, env={PASSWORD_FILE_ENV: str(secret)}).returncode == 1
    secret.write_text(PASSWORD)
    other = {PASSWORD_FILE_ENV: str(secret), USERNAME_ENV: "someone"}
    assert healthcheck(port, config, env=other).returncode == 1


def test_plain_http_to_a_tls_exporter_is_unhealthy(exporter, tmp_path) -> None:
    port = exporter(tls_and_auth(tmp_path))
    result = healthcheck(port)
    assert result.returncode == 1
    assert result.stderr.startswith(f"unhealthy: http://127.0.0.1:{port}/-/healthy")


def test_nothing_listening_is_unhealthy() -> None:
    port = free_port()
    result = healthcheck(port)
    assert result.returncode == 1
    assert "ConnectionRefusedError" in result.stderr


def test_a_bad_web_config_exits_3_naming_the_key(tmp_path) -> None:
    config = tmp_path / "web.yml"
    config.write_text("basic_auth_user: {}\n")
    result = healthcheck(free_port(), config)
    assert result.returncode == 3
    assert f"{config}:1: basic_auth_user: unknown key" in result.stderr


def test_flags_come_from_process_one_when_it_is_the_exporter(tmp_path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(
        b"/opt/venv/bin/python\0/opt/venv/bin/rackconnect-exporter\0"
        b"--web.listen-address=:9000\0--web.config.file\0/etc/web.yml\0"
    )
    assert _process_one_flags(cmdline) == {
        "--web.listen-address": ":9000",
        "--web.config.file": "/etc/web.yml",
    }
    cmdline.write_bytes(b"/bin/sh\0-c\0--web.listen-address=:9000\0")
    assert _process_one_flags(cmdline) == {}
    assert _process_one_flags(tmp_path / "missing") == {}
