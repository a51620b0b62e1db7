"""The route table: which provider serves which destinations, for which classes, at what price.

Theory of operation. A route entry says that one provider serves some destinations,
named by E.164 prefixes, by countries or by mobile operators (optionally only within some
countries), for some priority classes, at a price per part, with sender rules. For each
provider the entry that applies to a message is the most specific one among its entries
that match the destination and allow the message's class, ranked:

    operator (within listed countries)  >  operator  >  prefix, longest first
        >  country  >  catch-all (prefix "+" or country "*")

Operators come first because in Russia they set the price and, numbers being portable,
prefixes no longer tell them; a prefix names a range more narrowly than a country.
Ranking within a class lets one provider price OTP and bulk differently. Entries that tie
on rank for a class are refused by the config parser, so the choice never depends on the
order of the file.

Lookups go through indexes built once (a dict per prefix, country and operator); the
per-provider selection for a destination is memoised per (leading digits, country,
operator, class), so the hot path is a dict hit.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from routing.destinations import Destination, Resolver

Klass = Literal["otp", "transactional", "bulk"]
CLASSES: tuple[Klass, ...] = ("otp", "transactional", "bulk")
ANY_COUNTRY = "*"
_MEMO_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class RouteEntry:
    provider: str
    price_per_part: Decimal
    prefixes: tuple[str, ...] = ()  # "+7916", or "+" for everything
    countries: tuple[str, ...] = ()  # "RU", or "*" for everything
    operators: tuple[str, ...] = ()  # canonical keys ("mts"); countries then restrict them
    classes: frozenset[str] = frozenset(CLASSES)
    weight: int = 1  # share among routes of equal price
    senders: tuple[str, ...] = ()  # accepted senders (glob patterns); empty: any
    numeric_sender: str | None = None  # set: the route needs a numeric sender; alphas become this
    name: str = ""  # where it came from, e.g. "routes[3]"

    def sender_for(self, sender: str) -> str | None:
        """The sender to submit with on this route, or None when it is not accepted."""
        if self.senders and not any(fnmatch.fnmatchcase(sender, p) for p in self.senders):
            return None
        if self.numeric_sender is not None and not is_numeric(sender):
            return self.numeric_sender
        return sender


def is_numeric(sender: str) -> bool:
    digits = sender[1:] if sender.startswith("+") else sender
    return digits.isdigit()


Verdict = Literal[
    "chosen",
    "wait",
    "no_match",
    "class_not_allowed",
    "sender_not_allowed",
    "excluded",
    "down",
    "breaker_open",
    "window_full",
    "no_tokens",
    "more_expensive",
    "not_drawn",
    "not_tried",
]


@dataclass(frozen=True, slots=True)
class Considered:
    """One provider in a decision, and why it was taken or left."""

    provider: str
    verdict: Verdict
    price_per_part: Decimal | None = None
    route: str | None = None  # the entry that applied, e.g. "routes[3]"
    match: str | None = None  # how it matched, e.g. "operator:mts"


@dataclass(frozen=True, slots=True)
class Match:
    """An entry that applies to a destination, and how it matched (for explanations)."""

    entry: RouteEntry
    how: str  # "operator:mts", "prefix:+7916", "country:RU", "any"
    rank: tuple[int, int]
    # Matches live in the table's memo, so their explanations are built once (a memo).
    _explained: dict[str, Considered] = field(default_factory=dict, compare=False, repr=False)

    def explain(self, verdict: Verdict) -> Considered:
        found = self._explained.get(verdict)
        if found is None:
            e = self.entry
            found = Considered(e.provider, verdict, e.price_per_part, e.name, self.how)
            self._explained[verdict] = found
        return found


@dataclass(frozen=True, slots=True)
class Selection:
    """One provider's answer for a destination and class: its match, or why none."""

    provider: str
    match: Match | None
    miss: Literal["no_match", "class_not_allowed"] | None = None

    @property
    def left(self) -> Considered:
        """The explanation of a provider that has no entry for the message."""
        return Considered(self.provider, self.miss or "no_match")


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    window_s: float = 60.0  # health is judged over this much recent time
    min_events: int = 20  # submits in the window before the error rate can trip it
    error_rate: float = 0.5  # temporary errors / submits at or over this trips it
    min_receipts: int = 50  # receipts in the window before the delivered ratio can trip it
    min_delivered_ratio: float = 0.2  # delivered / receipts under this trips it
    cool_down_s: float = 30.0  # open this long before probing
    probes: int = 3  # messages let through while half-open


@dataclass(frozen=True, slots=True)
class Policy:
    wait_for_price: frozenset[str] = frozenset({"bulk"})  # classes that wait, never spill
    max_route_attempts: int = 3  # routes tried per message before it fails
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


@dataclass(frozen=True, slots=True)
class RouteTable:
    entries: tuple[RouteEntry, ...]
    policy: Policy
    resolver: Resolver
    providers: tuple[str, ...]  # those with at least one entry, in order of first appearance
    _by_prefix: Mapping[str, tuple[RouteEntry, ...]] = field(repr=False, compare=False)
    _prefix_lengths: tuple[int, ...] = field(repr=False, compare=False)
    _by_country: Mapping[str, tuple[RouteEntry, ...]] = field(repr=False, compare=False)
    _by_operator: Mapping[str, tuple[RouteEntry, ...]] = field(repr=False, compare=False)
    # A memo of a pure function of the table (destination range, class → selections).
    _memo: dict[tuple[str, str | None, str | None, str], tuple[Selection, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        entries: Iterable[RouteEntry],
        policy: Policy | None = None,
        resolver: Resolver | None = None,
    ) -> RouteTable:
        entries = tuple(entries)
        by_prefix = _index(entries, lambda e: e.prefixes)
        return cls(
            entries,
            policy or Policy(),
            resolver or Resolver(),
            tuple(dict.fromkeys(e.provider for e in entries)),
            by_prefix,
            tuple(sorted({len(p) for p in by_prefix}, reverse=True)),
            _index(entries, lambda e: () if e.operators else e.countries),
            _index(entries, lambda e: e.operators),
        )

    def resolve(self, number: str) -> Destination:
        return self.resolver.resolve(number)

    def select(self, destination: Destination, klass: str) -> tuple[Selection, ...]:
        """Each provider's applicable entry for this destination and class (memoised)."""
        digits = destination.number[: self._prefix_lengths[0]] if self._prefix_lengths else ""
        key = (digits, destination.country, destination.operator, klass)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = self._select(destination, klass)
        return found

    def matches(self, destination: Destination) -> list[Match]:
        """Every entry that matches the destination, whatever its class."""
        found = [
            Match(e, f"operator:{destination.operator}", (5 if e.countries else 4, 0))
            for e in self._by_operator.get(destination.operator or "", ())
            if not e.countries or destination.country in e.countries
        ]
        for length in self._prefix_lengths:
            prefix = destination.number[:length]
            rank = (3, length) if length > 1 else (1, 0)
            found += [Match(e, f"prefix:{prefix}", rank) for e in self._by_prefix.get(prefix, ())]
        found += [
            Match(e, f"country:{destination.country}", (2, 0))
            for e in self._by_country.get(destination.country or "", ())
        ]
        found += [Match(e, "any", (1, 0)) for e in self._by_country.get(ANY_COUNTRY, ())]
        return found

    def _select(self, destination: Destination, klass: str) -> tuple[Selection, ...]:
        best: dict[str, Match] = {}
        seen: set[str] = set()
        for match in self.matches(destination):
            provider = match.entry.provider
            seen.add(provider)
            if klass in match.entry.classes and (
                provider not in best or match.rank > best[provider].rank
            ):
                best[provider] = match
        return tuple(_selection(p, best.get(p), p in seen) for p in self.providers)


def _selection(provider: str, match: Match | None, seen: bool) -> Selection:
    if match is not None:
        return Selection(provider, match)
    return Selection(provider, None, "class_not_allowed" if seen else "no_match")


def _index(
    entries: tuple[RouteEntry, ...], keys: Callable[[RouteEntry], Iterable[str]]
) -> dict[str, tuple[RouteEntry, ...]]:
    index: dict[str, tuple[RouteEntry, ...]] = {}
    for entry in entries:
        for key in keys(entry):
            index[key] = (*index.get(key, ()), entry)
    return index
