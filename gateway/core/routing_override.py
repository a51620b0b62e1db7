"""Routes and prices set at run time (the admin's providers page), checked and rendered.

The override replaces the config file's ``[[routes]]`` only: the ``[routing]`` policy
(breaker, waiting for price, ported numbers, operator aliases) stays with the file, so
the override's entries are parsed by the same functions as the file's
(``routing.config.parse_entry`` and ``check_ties``) against the running table's aliases,
and built on its policy and resolver. A bad document raises ``RouteConfigError`` naming
the field (``routes[2].price_per_part``); nothing of it is applied. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from routing import CLASSES, RouteConfigError, RouteEntry, RouteTable
from routing.config import check_ties, parse_entry

DOCUMENT_KEYS = frozenset({"routes"})


def parse_override(document: Any, providers: Collection[str], base: RouteTable) -> RouteTable:
    """The table a ``{"routes": [...]}`` document makes on top of ``base``'s policy."""
    if not isinstance(document, Mapping):
        raise RouteConfigError("document", 'must be an object: {"routes": [...]}')
    unknown = sorted(set(document) - DOCUMENT_KEYS)
    if unknown:
        raise RouteConfigError(unknown[0], "unknown key (the [routing] policy stays in the file)")
    raw = document.get("routes")
    if not isinstance(raw, list) or not raw:
        raise RouteConfigError("routes", "must be a non-empty list of routes")
    aliases = base.resolver.aliases
    entries = tuple(parse_entry(r, f"routes[{i}]", providers, aliases) for i, r in enumerate(raw))
    check_ties(entries)
    return RouteTable.build(entries, base.policy, base.resolver)


def to_document(table: RouteTable) -> dict[str, Any]:
    """A table's routes as a document ``parse_override`` reads back (prices as strings)."""
    return {"routes": [entry_to_dict(e) for e in table.entries]}


def entry_to_dict(entry: RouteEntry) -> dict[str, Any]:
    found: dict[str, Any] = {"provider": entry.provider}
    for name in ("prefixes", "countries", "operators", "senders"):
        if getattr(entry, name):
            found[name] = list(getattr(entry, name))
    found["price_per_part"] = str(entry.price_per_part)
    if entry.classes != frozenset(CLASSES):
        found["classes"] = [c for c in CLASSES if c in entry.classes]
    if entry.weight != 1:
        found["weight"] = entry.weight
    if entry.numeric_sender is not None:
        found["numeric_sender"] = entry.numeric_sender
    return found
