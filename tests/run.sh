#!/usr/bin/env bash
# Runs every check and test of rackconnect-exporter: ruff, mypy, then pytest.
#
# Root is needed only to install the Debian packages the tests use. Run with sudo, the
# script installs them and then runs everything else (virtualenv in .venv, pip, ruff,
# pytest) as the user who ran sudo, so the clone stays theirs. Run by a user who lacks
# them, it prints the one apt-get line to run and exits 1. Run as root without sudo (CI),
# it does everything as root.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(prometheus prometheus-alertmanager chromium systemd jq)
python3 -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
# Packages that ship services the tests do not need (they run the binaries themselves).
services=(prometheus prometheus-alertmanager prometheus-node-exporter)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# Install the packages without starting their services, then disable the ones this
# install brought in, so that nothing listens on Prometheus's ports afterwards.
install_packages() {
  local new_services=() svc policy=/usr/sbin/policy-rc.d own_policy=""
  for svc in "${services[@]}"; do
    installed "$svc" || new_services+=("$svc")
  done
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# tests/run.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # apt and dpkg say several hundred lines; keep them for when something fails.
  local log
  log="$(mktemp)"
  echo "tests/run.sh: installing $* (apt's output is shown only if it fails)" >&2
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "tests/run.sh: apt-get failed; its output is above" >&2
    exit 1
  fi
  rm -f "$log"
  if [ -n "$own_policy" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
  for svc in "${new_services[@]}"; do
    installed "$svc" || continue
    if [ -d /run/systemd/system ] && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
    if command -v systemctl >/dev/null; then
      systemctl disable --quiet "$svc" 2>/dev/null || true
    fi
  done
}

missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: the tests need Debian packages that are missing; install them with:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  install_packages "${missing[@]}"
fi

# Started with sudo by a normal user: the rest runs as that user.
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "${SUDO_UID:-0}" != 0 ]; then
  exec runuser -u "$SUDO_USER" -- bash tests/run.sh "$@"
fi

if [ -e .venv ] && [ ! -w .venv ]; then
  echo "tests/run.sh: .venv belongs to $(stat -c %U .venv) (an earlier run as root?);" \
    "remove it: sudo rm -rf .venv" >&2
  exit 1
fi
# A .venv left half-made (python3 -m venv without python3-venv) has no working pip.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv
  python3 -m venv .venv || {
    rm -rf .venv
    exit 1
  }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
