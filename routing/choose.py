"""Choosing the route for one message: cheapest with capacity, spilling or waiting, explained.

Theory of operation. The table gives each provider's applicable entry for the
destination and class (or why none). A provider is then *eligible* if it accepts the
sender and the message has not already failed temporarily on it ("retry on the next
route": the caller passes those in ``excluded``); *usable* if it is also up and its
breaker lets traffic through; *available* if it also has room in its SMPP window and
tokens in its TPS limiter for every part of the message right now (both in ``state``).

- The cheapest available route is taken. When the cheapest usable one is saturated, a
  message spills to the next cheapest available one instead of queueing, unless its class
  is one the policy makes wait for price (never OTP): then it waits on the cheapest.
- When every usable route is saturated the message waits on the cheapest one.
- Routes of equal price share the traffic by weight, by a hash of the message id: the
  same inputs always give the same decision, and consecutive ids spread evenly.
- Outcomes are "send" and "wait" (with a provider), "no_route" (nothing in the table
  serves this destination, class and sender: permanent), "unavailable" (routes exist but
  none is usable now: retry later) and "exhausted" (tried ``max_route_attempts`` routes).

Every provider in the table appears in ``considered`` with the verdict that took or left
it, so ``POST /v1/routes/simulate`` and the logs can say why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

from routing.destinations import Destination
from routing.health import Gate
from routing.pricing import total
from routing.table import Considered, Match, RouteTable, Selection, Verdict

Outcome = Literal["send", "wait", "no_route", "unavailable", "exhausted"]
_PERMANENT = frozenset({"no_match", "class_not_allowed", "sender_not_allowed"})
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class RouteRequest:
    message_id: int
    destination: str  # E.164
    parts: int = 1
    klass: str = "transactional"  # "otp", "transactional" or "bulk"
    sender: str = ""
    excluded: frozenset[str] = frozenset()  # providers it already failed on temporarily


@dataclass(frozen=True, slots=True)
class ProviderState:
    up: bool = True  # bound / reachable
    tokens: float = math.inf  # parts its TPS limiter would let through right now
    window_room: float = math.inf  # free submit slots in its window
    gate: Gate = "closed"  # from its breaker: routing.health.Breaker.gate(now)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str
    destination: Destination
    provider: str | None = None
    price_per_part: Decimal | None = None
    total: Decimal | None = None
    sender: str | None = None  # to submit with: the request's, or the route's numeric one
    route: str | None = None
    probe: bool = False  # the route is half-open: call Breaker.probe_sent for this message
    considered: tuple[Considered, ...] = ()

    @property
    def routable(self) -> bool:
        """False when nothing configured could ever carry this message."""
        return self.outcome != "no_route"


class _Candidate(NamedTuple):
    """A usable route: up, breaker letting it through, eligible for this message."""

    match: Match
    price: Decimal
    sender: str
    status: Literal["available", "window_full", "no_tokens"]
    probe: bool


def choose(
    request: RouteRequest, table: RouteTable, state: Mapping[str, ProviderState]
) -> Decision:
    destination = table.resolve(request.destination)
    usable: list[_Candidate] = []
    left: dict[str, Considered] = {}
    for selection in table.select(destination, request.klass):
        assessed = _assess(selection, request, state.get(selection.provider))
        if isinstance(assessed, _Candidate):
            usable.append(assessed)
        else:
            left[selection.provider] = assessed
    if len(request.excluded) >= table.policy.max_route_attempts:
        return _nothing(destination, "exhausted", "route_attempts_exhausted", table, left, usable)
    if not usable:
        return _none_usable(destination, table, left)
    pick, outcome, reason = _pick(request, table, usable)
    entry = pick.match.entry
    return Decision(
        outcome,
        reason,
        destination,
        entry.provider,
        pick.price,
        total(pick.price, request.parts),
        pick.sender,
        entry.name,
        pick.probe,
        _considered(table, left, usable, pick, outcome),
    )


def _assess(
    selection: Selection, request: RouteRequest, state: ProviderState | None
) -> _Candidate | Considered:
    match = selection.match
    if match is None:
        return selection.left
    sender = match.entry.sender_for(request.sender)
    if sender is None:
        return _considered_one(match, "sender_not_allowed")
    if selection.provider in request.excluded:
        return _considered_one(match, "excluded")
    if state is None or not state.up:
        return _considered_one(match, "down")
    if state.gate == "open":
        return _considered_one(match, "breaker_open")
    status = _capacity(state, request.parts)
    return _Candidate(match, match.entry.price_per_part, sender, status, state.gate == "probe")


def _capacity(state: ProviderState, parts: int) -> Literal["available", "window_full", "no_tokens"]:
    if state.window_room < parts:
        return "window_full"
    return "no_tokens" if state.tokens < parts else "available"


def _pick(
    request: RouteRequest, table: RouteTable, usable: list[_Candidate]
) -> tuple[_Candidate, Outcome, str]:
    cheapest = min(c.price for c in usable)
    tier = [c for c in usable if c.price == cheapest]
    if request.klass in table.policy.wait_for_price:
        ready = [c for c in tier if c.status == "available"]
        if ready:
            return _draw(ready, request.message_id), "send", "cheapest"
        return _draw(tier, request.message_id), "wait", "waiting_for_cheapest"
    available = [c for c in usable if c.status == "available"]
    if not available:
        return _draw(tier, request.message_id), "wait", "all_saturated"
    low = min(c.price for c in available)
    pick = _draw([c for c in available if c.price == low], request.message_id)
    return pick, "send", "cheapest" if low == cheapest else "spilled"


def _draw(pool: list[_Candidate], message_id: int) -> _Candidate:
    """One of equal-price routes, by weight, the same one for the same message id."""
    if len(pool) == 1:
        return pool[0]
    point = _mix(message_id) % sum(c.match.entry.weight for c in pool)
    for candidate in pool:
        point -= candidate.match.entry.weight
        if point < 0:
            return candidate
    raise AssertionError("unreachable: point < sum of weights")


def _mix(n: int) -> int:
    """splitmix64's finaliser: neighbouring ids land far apart."""
    n = (n + 0x9E3779B97F4A7C15) & _MASK64
    n = ((n ^ (n >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    n = ((n ^ (n >> 27)) * 0x94D049BB133111EB) & _MASK64
    return n ^ (n >> 31)


def _considered(
    table: RouteTable,
    left: dict[str, Considered],
    usable: list[_Candidate],
    pick: _Candidate,
    outcome: Outcome,
) -> tuple[Considered, ...]:
    for c in usable:
        left[c.match.entry.provider] = _considered_one(c.match, _verdict(c, pick, outcome))
    return tuple(left[p] for p in table.providers)


def _verdict(candidate: _Candidate, pick: _Candidate, outcome: Outcome) -> Verdict:
    if candidate is pick:
        return "chosen" if outcome == "send" else "wait"
    if candidate.status != "available":
        return candidate.status
    return "more_expensive" if candidate.price > pick.price else "not_drawn"


def _considered_one(match: Match, verdict: Verdict) -> Considered:
    return match.explain(verdict)


def _none_usable(
    destination: Destination, table: RouteTable, left: dict[str, Considered]
) -> Decision:
    verdicts = {c.verdict for c in left.values()}
    if verdicts <= _PERMANENT:
        reason = "no_route" if verdicts <= {"no_match"} else "not_allowed"
        return _nothing(destination, "no_route", reason, table, left, [])
    reason = "all_excluded" if verdicts - _PERMANENT == {"excluded"} else "none_up"
    return _nothing(destination, "unavailable", reason, table, left, [])


def _nothing(
    destination: Destination,
    outcome: Outcome,
    reason: str,
    table: RouteTable,
    left: dict[str, Considered],
    usable: list[_Candidate],
) -> Decision:
    for c in usable:
        left[c.match.entry.provider] = _considered_one(c.match, "not_tried")
    considered = tuple(left[p] for p in table.providers)
    return Decision(outcome, reason, destination, considered=considered)
