"""``smsgw route TO [TEXT]``: the routing decision for a message, from the settings alone."""

from __future__ import annotations

from typing import Any

from gateway.core.numbers import InvalidNumber, to_e164
from gateway.settings import Settings
from providers.encoding import analyse
from routing import ProviderState, RouteRequest, choose, decision_to_dict, quote, quote_to_dict


def simulate(settings: Settings, to: str, text: str, sender: str, klass: str) -> dict[str, Any]:
    """Every configured provider is taken as up with room: the table's own answer."""
    try:
        number = to_e164(to, settings.default_region)
    except InvalidNumber as exc:
        raise SystemExit(f"to: {exc}") from None
    parts = analyse(text).parts
    table = settings.routing
    state = {p.name: ProviderState() for p in settings.providers}
    decision = choose(RouteRequest(0, number, parts, klass, sender), table, state)
    found = quote(table, number, parts, klass, sender)
    return {
        "to": number,
        "parts": parts,
        **decision_to_dict(decision),
        "quote": quote_to_dict(found) if found else None,
    }
