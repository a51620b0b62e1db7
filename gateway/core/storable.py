"""What PostgreSQL text cannot store, found in untrusted input before it gets there.

A NUL character is valid JSON (``"\\u0000"``) and a valid URL (``%00``), but PostgreSQL
refuses it in text: left in, it would fail the statement, and with it every other request
of the same group commit. ``nul_path`` names the field that holds one, so that the answer
is a 422 naming it.
"""

from __future__ import annotations

from collections.abc import Iterator

JsonValue = object


def nul_path(value: JsonValue, prefix: str = "") -> str | None:
    """The path (``messages[3].text``) of the first key or string holding a NUL, or None."""
    return next(_paths(value, prefix), None)


def _paths(value: JsonValue, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\0" in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\0" in str(key):
                yield path or "body"
            yield from _paths(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, f"{path}[{index}]")
