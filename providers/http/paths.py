"""Dotted paths into JSON documents: reading one value, building a document from many. Pure."""

from __future__ import annotations

from collections.abc import Mapping

JsonValue = object


def dig(doc: JsonValue, path: str) -> JsonValue:
    """The value at ``path`` (``messages.0.messageId``), or None; "" is the document itself."""
    node = doc
    for key in path.split(".") if path else ():
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def scalar(doc: JsonValue, path: str) -> str | None:
    """The string, number or boolean at ``path`` as text; None when absent, null or a container."""
    value = dig(doc, path)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def nest(values: Mapping[str, str]) -> JsonValue:
    """``{"a.0.b": "x"}`` → ``{"a": [{"b": "x"}]}``; an object whose keys are 0..n-1 is a list."""
    root: dict[str, JsonValue] = {}
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = root
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ValueError(f"{path}: {key} already holds a value")
            node = child
        if leaf in node:
            raise ValueError(f"{path}: already holds an object")
        node[leaf] = value
    return _lists(root)


def _lists(node: JsonValue) -> JsonValue:
    if not isinstance(node, dict):
        return node
    items = {key: _lists(value) for key, value in node.items()}
    if not items or not all(key.isdigit() for key in items):
        return items
    by_index = {int(key): value for key, value in items.items()}
    if sorted(by_index) != list(range(len(items))):
        raise ValueError(f"list indices {sorted(items)} must count from 0 without gaps")
    return [by_index[i] for i in range(len(items))]
