"""Who may call what: API key scopes, the scope each route needs, sender allow-lists.

Every route is in ``ROUTE_SCOPES`` (a test checks the app against it); ``None`` marks a
route that takes no API key (health, provider callbacks, which carry their own
signature). A route missing from the table needs ``admin``: a new route is closed to
narrower keys until someone decides otherwise. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Scope(StrEnum):
    SEND = "send"  # submit messages, add opt-outs
    READ = "read"  # message status, balance, rates, inbound messages
    ADMIN = "admin"  # the client's settings: lifting opt-outs, the provider pool view
    OPERATOR = "operator"  # the gateway's own operators: routes, prices, providers on/off


ALL_SCOPES = frozenset(Scope)
# A new key's scopes unless others are named: operator changes routing for every client,
# so it is only ever given on purpose.
DEFAULT_SCOPES = ALL_SCOPES - {Scope.OPERATOR}

ROUTE_SCOPES: Mapping[tuple[str, str], Scope | None] = {
    ("POST", "/v1/messages"): Scope.SEND,
    ("POST", "/v1/messages/batch"): Scope.SEND,
    ("GET", "/v1/messages/{id}"): Scope.READ,
    ("GET", "/v1/balance"): Scope.READ,
    ("POST", "/v1/routes/simulate"): Scope.READ,
    ("GET", "/v1/rates"): Scope.READ,
    ("GET", "/v1/inbound"): Scope.READ,
    ("GET", "/v1/opt-outs"): Scope.READ,
    ("GET", "/v1/opt-outs/{number}"): Scope.READ,
    ("POST", "/v1/otp"): Scope.SEND,
    ("POST", "/v1/otp/{id}/check"): Scope.SEND,  # whoever sends the codes checks them
    ("GET", "/v1/otp/alerts"): Scope.READ,
    ("POST", "/v1/opt-outs"): Scope.SEND,
    ("DELETE", "/v1/opt-outs/{number}"): Scope.ADMIN,  # lifting one lets bulk reach them again
    ("GET", "/v1/providers"): Scope.ADMIN,
    ("GET", "/v1/providers/delivery"): Scope.ADMIN,
    ("GET", "/v1/admin/routing"): Scope.OPERATOR,
    ("PUT", "/v1/admin/routing"): Scope.OPERATOR,
    ("POST", "/v1/admin/providers/{name}/disable"): Scope.OPERATOR,
    ("POST", "/v1/admin/providers/{name}/enable"): Scope.OPERATOR,
    ("GET", "/v1/health"): None,
    ("GET", "/v1/ready"): None,
    ("GET", "/v1/openapi.json"): None,
    ("GET", "/metrics"): None,  # a scrape target: bind it to a private interface
    ("POST", "/v1/receipts/{provider}"): None,  # signed by the provider
}


def required_scope(method: str, route: str) -> Scope | None:
    """The scope a call needs; None: no key needed. HEAD is GET without the body."""
    method = "GET" if method.upper() == "HEAD" else method.upper()
    return ROUTE_SCOPES.get((method, route), Scope.ADMIN)


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scope names (CLI, database) → scopes; raises ValueError naming an unknown one."""
    scopes = set()
    for name in names:
        try:
            scopes.add(Scope(name))
        except ValueError:
            raise ValueError(
                f"unknown scope {name!r}: one of send, read, admin, operator"
            ) from None
    if not scopes:
        raise ValueError("at least one scope: send, read, admin, operator")
    return frozenset(scopes)


def _sender_key(sender: str) -> str:
    """Numbers match with or without '+'; alphanumeric ids regardless of case."""
    return sender.removeprefix("+").casefold()


def sender_allowed(sender: str, allowed: Iterable[str] | None, default: str | None) -> bool:
    """``allowed`` None: the client is not restricted (clients made before allow-lists).
    Otherwise the client's default sender and the listed ones only."""
    if allowed is None:
        return True
    permitted = {_sender_key(s) for s in allowed}
    if default:
        permitted.add(_sender_key(default))
    return _sender_key(sender) in permitted
