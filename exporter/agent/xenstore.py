"""XenStore, read from inside the VM: the server's id, region, roles and metadata."""

from __future__ import annotations

import json
import subprocess

XENSTORE_COMMAND = "xenstore-read"


def xenstore_read(key: str, command: str = XENSTORE_COMMAND) -> str | None:
    """A XenStore value inside the VM (``xenstore-read``), or None where there is none.

    Metadata values come JSON-quoted (``"DEPLOYED"``); the quotes are removed.
    """
    try:
        result = subprocess.run(
            [command, key], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip()
    if value.startswith('"'):
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = value.strip('"')
        value = decoded if isinstance(decoded, str) else value.strip('"')
    return value if result.returncode == 0 and value else None


def xenstore_server_id() -> str | None:
    """The instance UUID from XenStore's ``name`` (``instance-<uuid>``)."""
    name = xenstore_read("name")
    if name and name.startswith("instance-"):
        return name.removeprefix("instance-")
    return None
