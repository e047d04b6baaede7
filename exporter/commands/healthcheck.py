"""``healthcheck``: ask the running exporter's ``/-/healthy``, for container health checks.

It reads the same ``--web.listen-address`` and ``--web.config.file`` as the exporter; left
out, they are taken from the command line of process 1 when that is the exporter (as in
its container image). Exit 0 when the answer is 200, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import ssl
import sys
from pathlib import Path

from exporter.commands import flags
from exporter.commands.flags import parse_listen_address
from exporter.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from exporter.web.security import WebConfig, WebConfigError, load_web_config

TIMEOUT = 5.0  # seconds for the whole check
USERNAME_ENV = "RACKCONNECT_HEALTHCHECK_USERNAME"
PASSWORD_FILE_ENV = "RACKCONNECT_HEALTHCHECK_PASSWORD_FILE"
PROCESS_ONE = Path("/proc/1/cmdline")
_LOOPBACK_HOSTS = ("", "0.0.0.0", "::", "localhost", "127.0.0.1", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``healthcheck`` flags: where the exporter listens and its web configuration."""
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        type=flags.listen_address,
        metavar="[HOST]:PORT",
        help="the exporter's listen address (default: process 1's, else :10054)",
    )
    flags.add_web_config_flag(
        parser, "the exporter's web configuration: TLS and basic auth (default: process 1's)"
    )


def run(args: argparse.Namespace) -> int:
    """EXIT_OK when ``/-/healthy`` answers 200, EXIT_FAILURE otherwise."""
    address, config_file = args.listen_address, args.web_config_file
    if address is None or config_file is None:
        inherited = _process_one_flags(PROCESS_ONE)
        address = address or inherited.get("--web.listen-address")
        config_file = config_file or inherited.get("--web.config.file")
    if isinstance(address, str):
        address = flags.listen_address(address)
    host, port = address or parse_listen_address(":10054")
    try:
        web = load_web_config(config_file) if config_file else WebConfig()
        headers = _auth_headers(web)
    except (WebConfigError, OSError, ValueError) as exc:
        problems = exc.problems if isinstance(exc, WebConfigError) else [str(exc)]
        print("healthcheck: " + "; ".join(problems), file=sys.stderr)
        return EXIT_USAGE
    target = _connect_host(host)
    url = f"{'https' if web.tls else 'http'}://{_bracket(target)}:{port}/-/healthy"
    try:
        status = _get(target, port, web, headers)
    except (OSError, http.client.HTTPException) as exc:
        print(f"unhealthy: {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if status != 200:
        hint = f" (set {PASSWORD_FILE_ENV})" if status == 401 and not headers else ""
        print(f"unhealthy: {url} answered {status}{hint}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"healthy: {url} answered 200")
    return EXIT_OK


def _process_one_flags(path: Path) -> dict[str, str]:
    """The web flags of process 1 when it is rackconnect-exporter, else nothing."""
    try:
        argv = path.read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return {}
    if not any("rackconnect-exporter" in a or a == "exporter" for a in argv[:3]):
        return {}
    given: dict[str, str] = {}
    for i, arg in enumerate(argv):
        for name in ("--web.listen-address", "--web.config.file"):
            if arg.startswith(name + "="):
                given[name] = arg.split("=", 1)[1]
            elif arg == name and i + 1 < len(argv):
                given[name] = argv[i + 1]
    return given


def _auth_headers(web: WebConfig) -> dict[str, str]:
    """Basic auth from the environment when the exporter asks for it; ValueError if unclear."""
    if not web.users:
        return {}
    password_file = os.environ.get(PASSWORD_FILE_ENV)
    if not password_file:
        return {}  # the exporter will answer 401, reported with a hint
    username = os.environ.get(USERNAME_ENV)
    if not username:
        if len(web.users) != 1:
            raise ValueError(f"{USERNAME_ENV}: not set, and the web config has several users")
        (username,) = web.users
    password = Path(password_file).read_text(encoding="utf-8").strip()
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _connect_host(host: str) -> str:
    """Where to connect: the listen host, or loopback when it listens on every address."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _tls_context(web: WebConfig, host: str) -> ssl.SSLContext:
    """No verification on loopback (it is this machine's exporter); else the cert_file too."""
    assert web.tls is not None
    context = ssl.create_default_context()
    if host in _LOOPBACK_HOSTS or host.startswith("127."):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=web.tls.cert_file)
    if web.tls.client_auth_type != "NoClientCert":
        # The exporter's own certificate, accepted if its client_ca_file trusts it.
        context.load_cert_chain(web.tls.cert_file, web.tls.key_file)
    return context


def _get(host: str, port: int, web: WebConfig, headers: dict[str, str]) -> int:
    connection: http.client.HTTPConnection
    if web.tls:
        context = _tls_context(web, host)
        connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/-/healthy", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()
