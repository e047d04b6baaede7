"""The text both exposition formats share: family headers, label values, sample values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.utils import floatToGoString

from exporter.model import Server


@dataclass(frozen=True)
class Family:
    """One metric family: its name, type (gauge, counter, histogram or info) and help text."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()

    def header(self, openmetrics: bool, note: str) -> bytes:
        """The ``# HELP`` and ``# TYPE`` lines."""
        name, kind = self.name, self.kind
        if openmetrics and kind == "counter":
            name = name.removesuffix("_total")
        elif openmetrics and kind == "info":
            name = name.removesuffix("_info")
        elif kind == "info":
            kind = "gauge"
        text = escape_help(f"{self.help} {note}".strip())
        return f"# HELP {name} {text}\n# TYPE {name} {kind}\n".encode()


Lines = Callable[[Server, str, str, bool, bool], str]
"""``lines(server, name, labels, rackconnect, managed)``: one server's lines of a family."""


@dataclass(frozen=True)
class ServerFamily(Family):
    """A per-server family and the function that writes one server's lines of it.

    ``lines`` gets the server, the family's name, the server's labels (``{account=...,
    region=...,server_id="..."``, without the closing brace) and whether RackConnect and
    Managed Operations are expected there; it returns every line of the family for that
    server (each one name, labels, its own labels if any, ``}``, the value), or "".
    A family with ``only_if`` is written only in regions where a server passes it, and its
    header is left out while no region has a line of it.
    """

    lines: Lines = field(kw_only=True)
    only_if: Callable[[Server], bool] | None = field(default=None, kw_only=True)


def escape_label(value: str) -> str:
    """Escape a label value for both exposition formats."""
    if "\\" not in value and "\n" not in value and '"' not in value:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(value: str) -> str:
    """Escape a HELP text."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def labels(**pairs: str) -> str:
    """``name="value",...`` in the order given, values escaped."""
    return ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs.items())


def number(value: float) -> str:
    """A sample value: an integer without a fraction, else as Go writes it."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return floatToGoString(value)


def encode(text: str) -> bytes:
    """UTF-8; lone surrogates (from JSON escapes in upstream data) become "?"."""
    return text.encode("utf-8", "replace")
