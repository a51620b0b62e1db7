"""Property tests of routing.choose over random tables, states and requests."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routing import CLASSES, Decision, ProviderState, RouteRequest, RouteTable, choose, load_table
from routing.table import Selection

PROVIDERS = ("p0", "p1", "p2", "p3")
SELECTORS: tuple[tuple[str, str], ...] = (
    ("prefixes", "+7"), ("prefixes", "+79"), ("prefixes", "+792"),
    ("prefixes", "+7921"), ("prefixes", "+375"), ("countries", "RU"), ("countries", "BY"),
    ("countries", "*"), ("operators", "megafon"), ("operators", "beeline"),
)  # fmt: skip
NUMBERS = ("+79211234567", "+79031234567", "+79261234567", "+375291234567", "+12025550100")
PRICES = st.sampled_from(["0.10", "0.20", "0.20", "0.35", "0.50", "1"])


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    routes = []
    for provider in PROVIDERS:
        for kind, value in draw(st.sets(st.sampled_from(SELECTORS), max_size=4)):
            classes = draw(st.sets(st.sampled_from(CLASSES), min_size=1))
            routes.append(
                {
                    "provider": provider,
                    kind: [value],
                    "price_per_part": draw(PRICES),
                    "classes": sorted(classes),
                    "weight": draw(st.integers(1, 3)),
                }
            )
    wait = draw(st.sets(st.sampled_from(["transactional", "bulk"])))
    return {"routing": {"wait_for_price": sorted(wait)}, "routes": routes}


STATE = st.builds(
    ProviderState,
    up=st.booleans(),
    tokens=st.integers(0, 4),
    window_room=st.integers(0, 4),
    gate=st.sampled_from(["closed", "closed", "probe", "open"]),
)
STATES = st.fixed_dictionaries({p: STATE for p in PROVIDERS})
REQUESTS = st.builds(
    RouteRequest,
    message_id=st.integers(0, 2**63),
    destination=st.sampled_from(NUMBERS),
    parts=st.integers(1, 3),
    klass=st.sampled_from(CLASSES),
    excluded=st.frozensets(st.sampled_from(PROVIDERS), max_size=1),
)


def table_of(config: dict[str, Any]) -> RouteTable:
    return load_table(config, set(PROVIDERS))


def selections(table: RouteTable, request: RouteRequest) -> dict[str, Selection]:
    destination = table.resolve(request.destination)
    return {s.provider: s for s in table.select(destination, request.klass)}


def usable(
    table: RouteTable, request: RouteRequest, state: dict[str, ProviderState]
) -> dict[str, Decimal]:
    """Eligible, up and not blocked by a breaker: provider → price per part."""
    return {
        p: s.match.entry.price_per_part
        for p, s in selections(table, request).items()
        if s.match is not None
        and p not in request.excluded
        and state[p].up
        and state[p].gate != "open"
    }


def has_room(state: ProviderState, parts: int) -> bool:
    return state.tokens >= parts and state.window_room >= parts


@settings(max_examples=300, deadline=None)
@given(configs(), STATES, REQUESTS)
def test_choice_is_eligible_and_cheapest_with_capacity(
    config: dict[str, Any], state: dict[str, ProviderState], request: RouteRequest
) -> None:
    table = table_of(config)
    decision = choose(request, table, state)
    candidates = usable(table, request, state)
    available = {p: price for p, price in candidates.items() if has_room(state[p], request.parts)}
    if decision.outcome in ("send", "wait"):
        assert decision.provider in candidates  # never an open breaker, a down or excluded route
        assert decision.price_per_part == candidates[decision.provider]
    if decision.outcome == "send":
        assert decision.provider in available
        if request.klass in table.policy.wait_for_price:
            assert decision.price_per_part == min(candidates.values())
        else:
            assert decision.price_per_part == min(available.values())
    elif decision.outcome == "wait":
        assert decision.price_per_part == min(candidates.values())
        if request.klass not in table.policy.wait_for_price:
            assert not available  # spill classes wait only when nothing has room
    else:
        assert not candidates or decision.outcome == "exhausted"


@settings(deadline=None)
@given(configs(), STATES, REQUESTS)
def test_no_route_means_nothing_could_ever_serve(
    config: dict[str, Any], state: dict[str, ProviderState], request: RouteRequest
) -> None:
    table = table_of(config)
    decision = choose(request, table, state)
    everything_up = {p: ProviderState() for p in PROVIDERS}
    open_all = choose(replace(request, excluded=frozenset()), table, everything_up)
    assert (decision.outcome == "no_route") == (open_all.outcome == "no_route")
    assert decision.routable == (open_all.outcome != "no_route")


@settings(deadline=None)
@given(configs(), REQUESTS)
def test_most_specific_entry_applies(config: dict[str, Any], request: RouteRequest) -> None:
    table = table_of(config)
    destination = table.resolve(request.destination)
    for selection in table.select(destination, request.klass):
        rivals = [
            m.rank
            for m in table.matches(destination)
            if m.entry.provider == selection.provider and request.klass in m.entry.classes
        ]
        if selection.match is None:
            assert not rivals
        else:
            assert selection.match.rank == max(rivals)
            if selection.match.how.startswith("prefix:+") and len(selection.match.how) > 8:
                assert request.destination.startswith(selection.match.how[7:])


@settings(max_examples=200, deadline=None)
@given(configs(), STATES, st.lists(REQUESTS, min_size=1, max_size=40))
def test_spill_over_never_over_assigns_a_provider(
    config: dict[str, Any], state: dict[str, ProviderState], requests: list[RouteRequest]
) -> None:
    table = table_of(config)
    live = dict(state)
    for request in requests:
        decision = choose(request, table, live)
        if decision.outcome != "send":
            continue
        assert decision.provider is not None
        now = live[decision.provider]
        live[decision.provider] = replace(
            now, tokens=now.tokens - request.parts, window_room=now.window_room - request.parts
        )
        assert live[decision.provider].tokens >= 0 and live[decision.provider].window_room >= 0


@settings(deadline=None)
@given(configs(), STATES, REQUESTS)
def test_total_is_the_sum_of_the_parts(
    config: dict[str, Any], state: dict[str, ProviderState], request: RouteRequest
) -> None:
    decision = choose(request, table_of(config), state)
    if decision.provider is not None:
        assert decision.price_per_part is not None
        assert decision.total == sum([decision.price_per_part] * request.parts, Decimal(0))


@settings(deadline=None)
@given(configs(), STATES, REQUESTS)
def test_same_inputs_same_decision(
    config: dict[str, Any], state: dict[str, ProviderState], request: RouteRequest
) -> None:
    table = table_of(config)
    first: Decision = choose(request, table, state)
    assert choose(request, table, state) == first  # with the memos warm
    assert choose(request, table_of(config), dict(state)) == first  # and cold
    assert [c.provider for c in first.considered] == list(table.providers)


@settings(deadline=None)
@given(configs(), STATES, REQUESTS, st.sampled_from(PROVIDERS))
def test_an_open_breaker_is_never_chosen(
    config: dict[str, Any], state: dict[str, ProviderState], request: RouteRequest, sick: str
) -> None:
    live = {**state, sick: replace(state[sick], gate="open")}
    decision = choose(request, table_of(config), live)
    assert decision.provider != sick
