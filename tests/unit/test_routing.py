"""routing.choose: cheapest serving route with room; deterministic; explained."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from routing.choose import Route, RouteRequest, RouteState, choose

ROUTES = [
    Route("cheap", Decimal("0.20"), ("+7",)),
    Route("mid", Decimal("0.30"), ("+7", "+375")),
    Route("dear", Decimal("0.50"), ("+",)),
]


def state(**capacity: int) -> dict[str, RouteState]:
    return {name: RouteState(cap >= 0, max(cap, 0)) for name, cap in capacity.items()}


def test_cheapest_with_room_wins_and_price_is_per_part() -> None:
    decision = choose(RouteRequest("+79211234567", 3), ROUTES, state(cheap=5, mid=5, dear=5))
    assert decision.provider == "cheap" and decision.price == Decimal("0.60")


def test_full_cheapest_spills_to_next() -> None:
    decision = choose(RouteRequest("+79211234567", 1), ROUTES, state(cheap=0, mid=5, dear=5))
    assert decision.provider == "mid"
    assert ("cheap", "window_full") in decision.considered


def test_all_full_waits_on_cheapest_up() -> None:
    decision = choose(RouteRequest("+79211234567", 1), ROUTES, state(cheap=0, mid=0, dear=0))
    assert (decision.provider, decision.reason) == ("cheap", "cheapest_up_waiting")


def test_none_up_and_none_serving() -> None:
    down = choose(RouteRequest("+79211234567", 1), ROUTES, state(cheap=-1, mid=-1, dear=-1))
    assert down.provider is None and down.routable
    nowhere = choose(RouteRequest("+12025550100", 1), ROUTES[:2], state(cheap=1, mid=1))
    assert nowhere.provider is None and not nowhere.routable


caps = st.integers(min_value=-1, max_value=3)


@given(caps, caps, caps, st.sampled_from(["+79211234567", "+375291234567", "+12025550100"]))
def test_choice_is_eligible_and_cheapest_with_capacity(a: int, b: int, c: int, to: str) -> None:
    live = state(cheap=a, mid=b, dear=c)
    decision = choose(RouteRequest(to, 1), ROUTES, live)
    if decision.provider is None:
        return
    chosen = next(r for r in ROUTES if r.provider == decision.provider)
    assert any(to.startswith(p) for p in chosen.prefixes) and live[chosen.provider].ready
    cheaper_free = [
        r
        for r in ROUTES
        if r.price_per_part < chosen.price_per_part
        and live[r.provider].capacity > 0
        and any(to.startswith(p) for p in r.prefixes)
    ]
    assert not cheaper_free
    assert decision == choose(RouteRequest(to, 1), ROUTES, live)  # deterministic
