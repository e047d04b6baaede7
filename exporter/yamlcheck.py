"""Strict YAML for configuration files: duplicate keys are errors, keys know their line.

Shared by ``config.py`` (``--config.file``) and ``web/security.py`` (``--web.config.file``)
so both report problems the same way: ``PATH:LINE: WHERE: MESSAGE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlFileError(Exception):
    """The file cannot be read or is not valid YAML; the message names the file (and line)."""


class LineMapping(dict):
    """A dict that remembers the line of each key."""

    lines: dict[Any, int]


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and records line numbers."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> LineMapping:
    loader.flatten_mapping(node)
    result = LineMapping()
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_stable(path: str) -> bytes:
    """The file's bytes, read twice and refused unless both reads and stats agree.

    A file being written when it is read is refused whole rather than half taken: write
    a new file and rename it over the old one, which replaces it at once.
    """
    file = Path(path)
    before = file.stat()
    first, second = file.read_bytes(), file.read_bytes()
    after = file.stat()
    same = (before.st_ino, before.st_size, before.st_mtime_ns) == (
        after.st_ino,
        after.st_size,
        after.st_mtime_ns,
    )
    if first != second or not same:
        raise YamlFileError(
            f"{path}: the file changed while it was read; write a new file and rename it "
            "over this one"
        )
    return first


def load_yaml(path: str) -> Any:
    """Read and parse ``path`` strictly; YamlFileError says what is wrong and where."""
    try:
        text = read_stable(path).decode("utf-8")
    except OSError as exc:
        raise YamlFileError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path}: the file is not UTF-8 text") from exc
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlFileError(f"{where}: invalid YAML: {problem}") from exc


def line_of(mapping: dict, key: Any) -> int | str:
    """The line of ``key`` in a mapping read by StrictLoader; ``?`` if unknown."""
    return getattr(mapping, "lines", {}).get(key, "?")


def first_line(mapping: dict) -> int | str:
    """The line where a mapping read by StrictLoader starts; ``?`` if unknown."""
    lines = getattr(mapping, "lines", {})
    return min(lines.values()) if lines else "?"


def unknown_keys(mapping: dict, allowed: tuple[str, ...]) -> list[Any]:
    """The keys of ``mapping`` that are not in ``allowed``, in file order."""
    return [key for key in mapping if key not in allowed]
