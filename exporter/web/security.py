"""``--web.config.file``: TLS, basic auth and response headers (exporter-toolkit format).

The supported subset::

    tls_server_config:
      cert_file: server.crt          # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
      client_ca_file: clients-ca.crt
      min_version: TLS12             # TLS12 (default) or TLS13
      max_version: TLS13
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      prometheus: $2b$12$...         # bcrypt hash

Unknown keys are errors. The file and the certificates are re-read when they change.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from exporter.errors import InvalidConfigError
from exporter.logs import logger
from exporter.web.basicauth import BasicAuth
from exporter.yamlcheck import YamlFileError, line_of, load_yaml, unknown_keys

TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
)
HTTP_KEYS = ("headers",)
CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go can ask for a client certificate without verifying it; Python's ssl module cannot.
UNSUPPORTED_CLIENT_AUTH_TYPES = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# As exporter-toolkit: only these headers may be set, some only to these values.
ALLOWED_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_BCRYPT_HASH = re.compile(r"^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$")
CHECK_INTERVAL = 2.0  # seconds between looks at the files' modification times


class WebConfigError(InvalidConfigError):
    """The web configuration is unusable; ``problems`` names every reason."""


@dataclass(frozen=True)
class TLSSettings:
    """What ``tls_server_config`` asks for."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None

    def files(self) -> tuple[Path, ...]:
        """Every file the context is built from."""
        return tuple(p for p in (self.cert_file, self.key_file, self.client_ca_file) if p)

    def context(self) -> ssl.SSLContext:
        """A server SSLContext; raises WebConfigError when a file is unusable."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                [f"tls_server_config: cannot load cert_file/key_file: {_why(exc)}"]
            ) from exc
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise WebConfigError(
                    [f"tls_server_config.client_ca_file: cannot load: {_why(exc)}"]
                ) from exc
        ctx.verify_mode = CLIENT_AUTH_TYPES[self.client_auth_type]
        return ctx


@dataclass(frozen=True)
class WebConfig:
    """A parsed web configuration (empty: plain HTTP, no auth)."""

    tls: TLSSettings | None = None
    users: dict[str, bytes] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict)


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)


def load_web_config(path: str) -> WebConfig:
    """Read and validate a web configuration file, naming every problem."""
    try:
        doc = load_yaml(path)
    except YamlFileError as exc:
        raise WebConfigError([str(exc)]) from exc
    if doc is None:
        return WebConfig()
    if not isinstance(doc, dict):
        raise WebConfigError([f"{path}: the file must be a mapping"])
    problems: list[str] = []
    base = Path(path).parent

    def problem(mapping: dict, key: str, where: str, message: str) -> None:
        problems.append(f"{path}:{line_of(mapping, key)}: {where}: {message}")

    def unknown(mapping: dict, allowed: tuple[str, ...], prefix: str) -> None:
        for key in unknown_keys(mapping, allowed):
            problem(
                mapping, key, f"{prefix}{key}", f"unknown key (supported: {', '.join(allowed)})"
            )

    unknown(doc, TOP_KEYS, "")
    tls = None
    raw_tls = doc.get("tls_server_config")
    if isinstance(raw_tls, dict):
        unknown(raw_tls, TLS_KEYS, "tls_server_config.")
        tls = _tls(
            raw_tls, base, lambda key, msg: problem(raw_tls, key, f"tls_server_config.{key}", msg)
        )
    elif raw_tls is not None:
        problem(doc, "tls_server_config", "tls_server_config", "must be a mapping")

    headers: dict[str, str] = {}
    raw_http = doc.get("http_server_config")
    if isinstance(raw_http, dict):
        unknown(raw_http, HTTP_KEYS, "http_server_config.")
        raw_headers = raw_http.get("headers") or {}
        if not isinstance(raw_headers, dict):
            problem(raw_http, "headers", "http_server_config.headers", "must be a mapping")
            raw_headers = {}
        for name, value in raw_headers.items():
            where = f"http_server_config.headers.{name}"
            allowed = ALLOWED_HEADERS.get(str(name))
            if allowed is None:
                problem(raw_headers, name, where, "this header cannot be set")
            elif not isinstance(value, str) or "\n" in value or "\r" in value:
                problem(raw_headers, name, where, "must be a one-line string")
            elif allowed and value.lower() not in allowed:
                problem(raw_headers, name, where, f"must be one of: {', '.join(allowed)}")
            else:
                headers[str(name)] = value
    elif raw_http is not None:
        problem(doc, "http_server_config", "http_server_config", "must be a mapping")

    users: dict[str, bytes] = {}
    raw_users = doc.get("basic_auth_users")
    if isinstance(raw_users, dict):
        for user, hashed in raw_users.items():
            where = f"basic_auth_users.{user}"
            if not isinstance(user, str) or not user or ":" in user:
                problem(raw_users, user, where, "user names are non-empty and without ':'")
            elif not isinstance(hashed, str) or not _BCRYPT_HASH.match(hashed):
                problem(raw_users, user, where, "must be a bcrypt hash ($2b$...)")
            else:
                users[user] = hashed.encode()
    elif raw_users is not None:
        problem(doc, "basic_auth_users", "basic_auth_users", "must be a mapping of user: hash")

    if problems:
        raise WebConfigError(problems)
    config = WebConfig(tls, users, headers)
    if tls is not None:
        tls.context()  # fail now, not on the first connection
    return config


def _tls(raw: dict, base: Path, problem) -> TLSSettings | None:
    ok = True

    def path(key: str, required: bool) -> Path | None:
        nonlocal ok
        value = raw.get(key)
        if value is None:
            if required:
                problem(key, "missing")
                ok = False
            return None
        if not isinstance(value, str) or not value.strip():
            problem(key, "must be a file name")
            ok = False
            return None
        return base / value.strip()

    cert, key = path("cert_file", True), path("key_file", True)
    ca = path("client_ca_file", False)
    auth = raw.get("client_auth_type", "NoClientCert")
    if auth in UNSUPPORTED_CLIENT_AUTH_TYPES:
        problem(
            "client_auth_type",
            f"{auth} is not supported (Python's ssl module cannot request a client "
            "certificate without verifying it): use VerifyClientCertIfGiven or "
            "RequireAndVerifyClientCert with client_ca_file",
        )
        ok = False
    elif auth not in CLIENT_AUTH_TYPES:
        problem("client_auth_type", f"unknown value {auth!r} ({', '.join(CLIENT_AUTH_TYPES)})")
        ok = False
    elif auth != "NoClientCert" and ca is None:
        problem("client_ca_file", f"required with client_auth_type {auth}")
        ok = False
    elif auth == "NoClientCert" and ca is not None:
        problem("client_ca_file", "given without a client_auth_type that verifies certificates")
        ok = False
    min_version = raw.get("min_version", "TLS12")
    max_version = raw.get("max_version")
    for name, value in (("min_version", min_version), ("max_version", max_version)):
        if value is not None and value not in TLS_VERSIONS:
            problem(name, f"unknown version {value!r} (TLS12 or TLS13)")
            ok = False
    if (
        min_version in TLS_VERSIONS
        and max_version in TLS_VERSIONS
        and TLS_VERSIONS[min_version] > TLS_VERSIONS[max_version]
    ):
        problem("max_version", "is lower than min_version")
        ok = False
    if not ok or cert is None or key is None:
        return None
    return TLSSettings(cert, key, auth, ca, min_version, max_version)


class WebSecurity:
    """The live web configuration: re-read when the file or a certificate changes."""

    def __init__(self, path: str | None, check_interval: float = CHECK_INTERVAL) -> None:
        self.path = path
        self.check_interval = check_interval
        self.auth = BasicAuth()
        self._lock = threading.Lock()
        self._next_check = 0.0
        self.config = load_web_config(path) if path else WebConfig()
        self._context = self.config.tls.context() if self.config.tls else None
        self._stamps = self._mtimes(self.config)

    @property
    def tls(self) -> bool:
        """Whether connections are served over TLS."""
        return self._context is not None

    @property
    def headers(self) -> dict[str, str]:
        """Extra headers for every answer."""
        return self.config.headers

    @property
    def context(self) -> ssl.SSLContext | None:
        """The current server SSLContext (after a reload check)."""
        self.maybe_reload()
        return self._context

    def authorized(self, header: str | None) -> bool:
        """True when no users are configured or the Authorization header is right."""
        users = self.config.users
        return not users or self.auth.check(users, header)

    def _mtimes(self, config: WebConfig) -> tuple:
        files = [Path(self.path)] if self.path else []
        if config.tls:
            files += config.tls.files()
        stamps: list[tuple[str, int | None, int | None, int | None]] = []
        for f in files:
            try:
                st = os.stat(f)
                stamps.append((str(f), st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                stamps.append((str(f), None, None, None))
        return tuple(stamps)

    def maybe_reload(self, force: bool = False) -> None:
        """Re-read the file and certificates if one changed (looks every few seconds)."""
        if not self.path:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now < self._next_check:
                return
            self._next_check = now + self.check_interval
            stamps = self._mtimes(self.config)
            if stamps == self._stamps:
                return
            try:
                config = load_web_config(self.path)
                context = config.tls.context() if config.tls else None
            except WebConfigError as exc:
                self._stamps = stamps  # say it once per change, keep serving as before
                logger.error(
                    "web config reload failed, keeping the previous one",
                    extra={"file": self.path, "err": "; ".join(exc.problems)},
                )
                return
            self.config, self._context = config, context
            self._stamps = self._mtimes(config)
            logger.info(
                "web config reloaded",
                extra={"file": self.path, "tls": context is not None, "users": len(config.users)},
            )
