"""Dotted keys in a config's data: `scheduler.budget.wall`, `samplers.0.model`.

The command line sets them (`--set KEY=VALUE` and the flags that stand for a
key), and the reports read them (`compare --by KEY`). A list item is named by
its index or, where the items have names (the samplers), by its name. Plain
data only, no models: config.py validates what was set.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from typing import Any


class DottedKeyError(ValueError):
    """A dotted key or assignment that cannot be used; the message names it."""


def parse_assignment(text: str) -> tuple[str, Any]:
    """KEY=VALUE of `--set`: the value read as TOML would read it (8, 0.5,
    true, "x", [1, 2]), else as text, so `wall=5m` needs no quotes."""
    key, equals, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not equals or not key or not re.fullmatch(r"[\w.-]+", key):
        raise DottedKeyError(f"--set {text!r}: write KEY=VALUE with a dotted KEY, "
                             "e.g. --set scheduler.budget.wall=5m")
    try:
        return key, tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return key, value


def get(data: Any, key: str) -> Any:
    """The value at a dotted key; KeyError(key) where there is none."""
    node = data
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(key)
    return node


def set_key(data: dict[str, Any], dotted: str, value: Any,
            missing: Callable[[str], Any] = lambda key: {}) -> str:
    """Sets one dotted key and returns it with list items by index.
    `missing(key)` makes a top-level table or list the data leaves out."""
    node: Any = data
    parts = dotted.split(".")
    path: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            part = _index(node, part, dotted)
        elif not isinstance(node, dict):
            raise DottedKeyError(f"command line: key '{dotted}': '{'.'.join(path)}' is "
                                 f"{node!r}, not a table with keys")
        elif not last and part not in node:
            node[part] = missing(part) if depth == 0 else {}
        path.append(str(part))
        if last:
            node[part] = value
        else:
            node = node[part]
    return ".".join(path)


def _index(items: list[Any], part: str, dotted: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    raise DottedKeyError(f"command line: key '{dotted}': no item '{part}' (give an index "
                         f"below {len(items)} or a name: {', '.join(map(str, names)) or 'none'})")
