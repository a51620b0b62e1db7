"""Prices: per part per route entry, totals, the rate card and the billing quote.

Theory of operation. A message is priced per part by the route entry that carried it:
total = parts × price per part, in ``Decimal`` throughout (never float). ``rates``
answers "what does a message to this number cost on each provider" (GET /v1/rates), and
``quote`` the range a message may cost whichever eligible route it ends up on: billing
holds the highest, since failover may move it to a dearer route than the cheapest. Both
ignore the providers' live state: prices do not change when a route is busy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from routing.table import CLASSES, Match, RouteTable


def total(price_per_part: Decimal, parts: int) -> Decimal:
    if parts < 1:
        raise ValueError("a message has at least one part")
    return price_per_part * parts


@dataclass(frozen=True, slots=True)
class Rate:
    provider: str
    price_per_part: Decimal
    classes: tuple[str, ...]  # the classes this price applies to on this provider
    route: str  # the entry's name, e.g. "routes[3]"
    match: str  # how it matched, e.g. "operator:mts"


@dataclass(frozen=True, slots=True)
class Quote:
    parts: int
    lowest: Decimal  # total on the cheapest eligible route
    highest: Decimal  # total on the dearest eligible route: what to hold
    cheapest_provider: str
    dearest_provider: str


def rates(table: RouteTable, number: str, klass: str | None = None) -> tuple[Rate, ...]:
    """Each eligible provider's price per part for ``number``, cheapest first.

    With no class, one line per (provider, entry) listing the classes it prices."""
    destination = table.resolve(number)
    found: dict[tuple[str, str], tuple[Match, list[str]]] = {}
    for k in (klass,) if klass else CLASSES:
        for selection in table.select(destination, k):
            if selection.match is not None:
                key = (selection.provider, selection.match.entry.name)
                found.setdefault(key, (selection.match, []))[1].append(k)
    lines = (
        Rate(m.entry.provider, m.entry.price_per_part, tuple(ks), m.entry.name, m.how)
        for m, ks in found.values()
    )
    return tuple(sorted(lines, key=lambda r: (r.price_per_part, r.provider)))


def quote(
    table: RouteTable, number: str, parts: int, klass: str, sender: str | None = None
) -> Quote | None:
    """The cheapest and dearest total among the routes that could carry this message,
    or None when none could (whatever their state)."""
    destination = table.resolve(number)
    prices = sorted(
        (s.match.entry.price_per_part, s.provider)
        for s in table.select(destination, klass)
        if s.match is not None and (sender is None or s.match.entry.sender_for(sender) is not None)
    )
    if not prices:
        return None
    (low, cheapest), (high, dearest) = prices[0], prices[-1]
    return Quote(parts, total(low, parts), total(high, parts), cheapest, dearest)
