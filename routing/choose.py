"""Choosing a provider for a message (pure; no IO, no gateway types).

The cheapest route that serves the destination and is up with window room wins; when
every serving route is busy the cheapest one that is up is returned to wait on; when
none is up the decision says so and the caller retries later. Ties go to the route
listed first, so the choice is deterministic. The decision says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    price_per_part: Decimal
    prefixes: tuple[str, ...] = ("+",)


@dataclass(frozen=True, slots=True)
class RouteRequest:
    destination: str  # E.164
    parts: int


@dataclass(frozen=True, slots=True)
class RouteState:
    ready: bool
    capacity: int


@dataclass(frozen=True, slots=True)
class Decision:
    provider: str | None
    price: Decimal | None
    reason: str
    considered: tuple[tuple[str, str], ...] = ()  # (provider, why it was or was not taken)

    @property
    def routable(self) -> bool:
        """False when no configured route serves the destination at all."""
        return self.reason != "no_route"


def serves(route: Route, destination: str) -> bool:
    return any(destination.startswith(prefix) for prefix in route.prefixes)


def choose(
    request: RouteRequest, routes: Sequence[Route], state: Mapping[str, RouteState]
) -> Decision:
    serving = sorted(
        (r for r in routes if serves(r, request.destination)), key=lambda r: r.price_per_part
    )
    if not serving:
        return Decision(None, None, "no_route")
    considered = tuple((r.provider, _status(state.get(r.provider))) for r in serving)
    up = [r for r in serving if _ready(state.get(r.provider))]
    free = [r for r in up if state[r.provider].capacity > 0]
    candidates = free or up
    if not candidates:
        return Decision(None, None, "all_down", considered)
    pick = candidates[0]
    reason = "cheapest_with_capacity" if free else "cheapest_up_waiting"
    return Decision(pick.provider, pick.price_per_part * request.parts, reason, considered)


def _ready(state: RouteState | None) -> bool:
    return state is not None and state.ready


def _status(state: RouteState | None) -> str:
    if not _ready(state):
        return "down"
    return "has_capacity" if state and state.capacity > 0 else "window_full"
