"""routing.choose: cheapest route with capacity, spill or wait, exclusions, breakers, explained."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

from routing import (
    ProviderState,
    RouteRequest,
    choose,
    decision_to_dict,
    load_table,
    quote,
    quote_to_dict,
    rates,
    rates_to_list,
)

RU = "+79211234567"  # MegaFon's range
BEELINE = "+79031234567"
MTS = "+79010812345"
CONFIG: dict[str, Any] = {
    "routing": {"wait_for_price": ["bulk"], "max_route_attempts": 3},
    "routes": [
        {"provider": "cheap", "prefixes": ["+7"], "price_per_part": "0.20"},
        {"provider": "mid", "prefixes": ["+7", "+375"], "price_per_part": "0.30"},
        {"provider": "dear", "countries": ["*"], "price_per_part": "0.50"},
    ],
}
TABLE = load_table(CONFIG, {"cheap", "mid", "dear"})
FREE = ProviderState(tokens=10, window_room=10)


def states(**overrides: ProviderState) -> dict[str, ProviderState]:
    return {"cheap": FREE, "mid": FREE, "dear": FREE, **overrides}


def verdicts(decision: Any) -> dict[str, str]:
    return {c.provider: c.verdict for c in decision.considered}


def test_cheapest_with_room_wins_and_is_priced_per_part() -> None:
    decision = choose(RouteRequest(1, RU, parts=3), TABLE, states())
    assert (decision.outcome, decision.provider, decision.reason) == ("send", "cheap", "cheapest")
    assert decision.price_per_part == Decimal("0.20") and decision.total == Decimal("0.60")
    assert verdicts(decision) == {
        "cheap": "chosen",
        "mid": "more_expensive",
        "dear": "more_expensive",
    }


def test_saturated_cheapest_spills_to_the_next() -> None:
    full = states(cheap=ProviderState(tokens=10, window_room=0))
    decision = choose(RouteRequest(1, RU), TABLE, full)
    assert (decision.provider, decision.reason) == ("mid", "spilled")
    assert verdicts(decision)["cheap"] == "window_full"
    dry = states(cheap=ProviderState(tokens=1, window_room=10))
    decision = choose(RouteRequest(1, RU, parts=2), TABLE, dry)
    assert decision.provider == "mid" and verdicts(decision)["cheap"] == "no_tokens"


def test_bulk_waits_for_the_cheapest_and_otp_never_does() -> None:
    full = states(cheap=ProviderState(tokens=0, window_room=0))
    bulk = choose(RouteRequest(1, RU, klass="bulk"), TABLE, full)
    assert (bulk.outcome, bulk.provider, bulk.reason) == ("wait", "cheap", "waiting_for_cheapest")
    assert verdicts(bulk)["mid"] == "more_expensive"
    otp = choose(RouteRequest(1, RU, klass="otp"), TABLE, full)
    assert (otp.outcome, otp.provider) == ("send", "mid")


def test_all_saturated_waits_on_the_cheapest_up() -> None:
    full = ProviderState(tokens=0, window_room=0)
    decision = choose(RouteRequest(1, RU), TABLE, states(cheap=full, mid=full, dear=full))
    assert (decision.outcome, decision.provider, decision.reason) == (
        "wait",
        "cheap",
        "all_saturated",
    )


def test_none_up_is_not_the_same_as_no_route() -> None:
    down = ProviderState(up=False)
    none_up = choose(RouteRequest(1, RU), TABLE, states(cheap=down, mid=down, dear=down))
    assert (none_up.outcome, none_up.reason, none_up.routable) == ("unavailable", "none_up", True)
    assert none_up.provider is None
    partial = load_table({"routes": CONFIG["routes"][:2]}, {"cheap", "mid", "dear"})
    nowhere = choose(RouteRequest(1, "+12025550100"), partial, states())
    assert (nowhere.outcome, nowhere.reason, nowhere.routable) == ("no_route", "no_route", False)
    assert verdicts(nowhere) == {"cheap": "no_match", "mid": "no_match"}


def test_excluded_routes_are_skipped_until_attempts_run_out() -> None:
    retry = choose(RouteRequest(1, RU, excluded=frozenset({"cheap"})), TABLE, states())
    assert retry.provider == "mid" and verdicts(retry)["cheap"] == "excluded"
    only = load_table({"routes": CONFIG["routes"][:1]}, {"cheap"})
    spent = choose(RouteRequest(1, RU, excluded=frozenset({"cheap"})), only, states())
    assert (spent.outcome, spent.reason) == ("unavailable", "all_excluded")
    tried = frozenset({"cheap", "mid", "x"})
    exhausted = choose(RouteRequest(1, RU, excluded=tried), TABLE, states())
    assert (exhausted.outcome, exhausted.reason) == ("exhausted", "route_attempts_exhausted")
    assert verdicts(exhausted)["dear"] == "not_tried"


def test_open_breaker_is_never_chosen_and_half_open_takes_a_probe() -> None:
    opened = choose(RouteRequest(1, RU), TABLE, states(cheap=ProviderState(gate="open")))
    assert opened.provider == "mid" and verdicts(opened)["cheap"] == "breaker_open"
    probing = choose(RouteRequest(1, RU), TABLE, states(cheap=ProviderState(gate="probe")))
    assert probing.provider == "cheap" and probing.probe


def test_classes_price_per_class_and_refuse_others() -> None:
    config = {
        "routes": [
            {"provider": "a", "countries": ["RU"], "price_per_part": "0.90", "classes": ["otp"]},
            {"provider": "a", "countries": ["RU"], "price_per_part": "0.25", "classes": ["bulk"]},
        ]
    }
    table = load_table(config, {"a"})
    assert choose(RouteRequest(1, RU, klass="otp"), table, {"a": FREE}).total == Decimal("0.90")
    assert choose(RouteRequest(1, RU, klass="bulk"), table, {"a": FREE}).total == Decimal("0.25")
    refused = choose(RouteRequest(1, RU, klass="transactional"), table, {"a": FREE})
    assert (refused.outcome, refused.reason) == ("no_route", "not_allowed")
    assert verdicts(refused) == {"a": "class_not_allowed"}


def test_sender_rules_and_numeric_rewrite() -> None:
    config = {
        "routes": [
            {
                "provider": "strict",
                "prefixes": ["+7"],
                "price_per_part": "0.1",
                "senders": ["Shop*"],
            },
            {
                "provider": "numeric",
                "prefixes": ["+7"],
                "price_per_part": "0.2",
                "numeric_sender": "79001234567",
            },
        ]
    }
    table = load_table(config, {"strict", "numeric"})
    live = {"strict": FREE, "numeric": FREE}
    shop = choose(RouteRequest(1, RU, sender="ShopRu"), table, live)
    assert (shop.provider, shop.sender) == ("strict", "ShopRu")
    acme = choose(RouteRequest(1, RU, sender="ACME"), table, live)
    assert (acme.provider, acme.sender) == ("numeric", "79001234567")
    assert verdicts(acme)["strict"] == "sender_not_allowed"
    number = choose(RouteRequest(1, RU, sender="+79160000000"), table, live)
    assert (number.provider, number.sender) == ("numeric", "+79160000000")
    nobody = choose(RouteRequest(1, RU, sender="ACME"), table, {"strict": FREE})
    assert nobody.outcome == "unavailable"  # "numeric" is down, the other refuses the sender


def test_equal_prices_split_by_weight_deterministically() -> None:
    config = {
        "routes": [
            {"provider": "a", "prefixes": ["+7"], "price_per_part": "0.3", "weight": 3},
            {"provider": "b", "prefixes": ["+7"], "price_per_part": "0.3", "weight": 1},
        ]
    }
    table = load_table(config, {"a", "b"})
    live = {"a": FREE, "b": FREE}
    picks = Counter(choose(RouteRequest(i, RU), table, live).provider for i in range(4000))
    assert 2800 < picks["a"] < 3200 and picks["a"] + picks["b"] == 4000
    first = choose(RouteRequest(42, RU), table, live)
    assert all(choose(RouteRequest(42, RU), table, live) == first for _ in range(5))
    loser = "b" if first.provider == "a" else "a"
    assert verdicts(first)[loser] == "not_drawn"
    only_b = choose(RouteRequest(42, RU), table, {"a": ProviderState(window_room=0), "b": FREE})
    assert only_b.provider == "b"


def test_operator_entries_beat_prefixes_and_follow_ported_numbers() -> None:
    config = {
        "routing": {"ported": {BEELINE: "MTS"}},
        "routes": [
            {"provider": "agg", "prefixes": ["+7"], "price_per_part": "0.40"},
            {"provider": "agg", "operators": ["МТС"], "price_per_part": "0.30"},
            {
                "provider": "mts",
                "operators": ["MTS"],
                "countries": ["RU"],
                "price_per_part": "0.35",
            },
        ],
    }
    table = load_table(config, {"agg", "mts"})
    live = {"agg": FREE, "mts": FREE}
    to_mts = choose(RouteRequest(1, MTS), table, live)
    assert (to_mts.provider, to_mts.price_per_part) == ("agg", Decimal("0.30"))
    assert to_mts.destination.operator == "mts" and to_mts.route == "routes[1]"
    ported = choose(RouteRequest(1, BEELINE), table, live)
    assert ported.destination.ported and ported.price_per_part == Decimal("0.30")
    megafon = choose(RouteRequest(1, RU), table, live)
    assert (megafon.provider, megafon.price_per_part) == ("agg", Decimal("0.40"))
    assert verdicts(megafon)["mts"] == "no_match"


def test_longest_prefix_wins_within_a_provider() -> None:
    config = {
        "routes": [
            {"provider": "a", "prefixes": ["+7"], "price_per_part": "0.5"},
            {"provider": "a", "prefixes": ["+7921"], "price_per_part": "0.3"},
            {"provider": "a", "prefixes": ["+792"], "price_per_part": "0.4"},
        ]
    }
    table = load_table(config, {"a"})
    decision = choose(RouteRequest(1, RU), table, {"a": FREE})
    assert (decision.price_per_part, decision.considered[0].match) == (
        Decimal("0.3"),
        "prefix:+7921",
    )


def test_decision_as_json() -> None:
    decision = choose(RouteRequest(1, RU, parts=2, sender="ACME"), TABLE, states())
    body = decision_to_dict(decision)
    assert json.loads(json.dumps(body)) == body
    assert body["total"] == "0.40" and body["provider"] == "cheap"
    assert body["destination"] == {"number": RU, "country": "RU", "operator": "megafon"}
    assert body["considered"][1] == {
        "provider": "mid",
        "verdict": "more_expensive",
        "price_per_part": "0.30",
        "route": "routes[1]",
        "match": "prefix:+7",
    }


def test_rates_and_quote() -> None:
    listed = rates(TABLE, RU)
    assert [(r.provider, r.price_per_part) for r in listed] == [
        ("cheap", Decimal("0.20")),
        ("mid", Decimal("0.30")),
        ("dear", Decimal("0.50")),
    ]
    assert listed[0].classes == ("otp", "transactional", "bulk")
    assert rates_to_list(listed)[2]["price_per_part"] == "0.50"
    held = quote(TABLE, RU, 3, "otp")
    assert held is not None
    assert (held.lowest, held.highest, held.dearest_provider) == (
        Decimal("0.60"),
        Decimal("1.50"),
        "dear",
    )
    assert quote_to_dict(held)["highest"] == "1.50"
    assert quote(load_table({"routes": []}, set()), RU, 1, "otp") is None
    assert [r.provider for r in rates(TABLE, "+375291234567")] == ["mid", "dear"]
