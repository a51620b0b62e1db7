"""The operators' routes override (gateway/core/routing_override.py): pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.routing_override import parse_override, to_document
from routing import RouteConfigError, RouteTable, load_table

PROVIDERS = ("mts", "beeline")
BASE = load_table(
    {
        "routing": {"max_route_attempts": 2, "operator_aliases": {"Tele2 Russia": "t2"}},
        "routes": [],
    },
    PROVIDERS,
)


def _error(document: Any) -> RouteConfigError:
    with pytest.raises(RouteConfigError) as caught:
        parse_override(document, PROVIDERS, BASE)
    return caught.value


def test_the_override_keeps_the_file_policy_and_aliases() -> None:
    document = {
        "routes": [
            {"provider": "mts", "operators": ["Tele2 Russia"], "price_per_part": "0.31"},
            {"provider": "beeline", "prefixes": ["+7"], "price_per_part": 0.4, "weight": 2},
        ]
    }
    table = parse_override(document, PROVIDERS, BASE)
    assert table.policy.max_route_attempts == 2
    assert table.entries[0].operators == ("t2",)
    assert table.entries[1].price_per_part == Decimal("0.4")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "document"),
        ({"routes": []}, "routes"),
        ({"routes": [{"provider": "mts", "prefixes": ["+7"]}]}, "routes[0].price_per_part"),
        (
            {"routes": [{"provider": "x", "prefixes": ["+7"], "price_per_part": "1"}]},
            "routes[0].provider",
        ),
        (
            {"routes": [{"provider": "mts", "prefixes": ["7"], "price_per_part": "1"}]},
            "routes[0].prefixes[0]",
        ),
        (
            {"routes": [{"provider": "mts", "prefixes": ["+7"], "price_per_part": "-1"}]},
            "routes[0].price_per_part",
        ),
        (
            {
                "routes": [{"provider": "mts", "prefixes": ["+7"], "price_per_part": "1"}],
                "routing": {},
            },
            "routing",
        ),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(document: Any, field: str) -> None:
    assert _error(document).key == field


def test_two_routes_that_tie_are_refused() -> None:
    route = {"provider": "mts", "prefixes": ["+7"], "price_per_part": "1"}
    assert _error({"routes": [route, route]}).key == "routes[1].prefixes"


prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False)
prefixes = st.from_regex(r"\+[1-9]\d{0,4}", fullmatch=True)
classes = st.sets(st.sampled_from(["otp", "transactional", "bulk"]), min_size=1)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    routes = []
    for provider in PROVIDERS:
        route: dict[str, Any] = {"provider": provider, "prefixes": [draw(prefixes)]}
        route["price_per_part"] = str(draw(prices))
        route["classes"] = sorted(draw(classes))
        route["weight"] = draw(st.integers(1, 5))
        routes.append(route)
    return {"routes": routes}


@given(documents())
def test_a_table_reads_back_from_its_document(document: dict[str, Any]) -> None:
    table = parse_override(document, PROVIDERS, BASE)
    again = parse_override(to_document(table), PROVIDERS, BASE)
    assert again.entries == table.entries
    assert all(isinstance(r["price_per_part"], str) for r in to_document(again)["routes"])


def test_the_document_of_an_empty_table_is_empty() -> None:
    assert to_document(RouteTable.build(())) == {"routes": []}
