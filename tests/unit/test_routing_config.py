"""routing.config: the TOML format, and errors that name the bad key."""

from __future__ import annotations

import copy
import textwrap
import tomllib
from decimal import Decimal
from typing import Any

import pytest

import routing.config
from routing import RouteConfigError, load_table

PROVIDERS = {"mts", "agg"}
GOOD: dict[str, Any] = {
    "routing": {"wait_for_price": ["bulk"], "max_route_attempts": 2, "breaker": {"probes": 1}},
    "routes": [
        {"provider": "agg", "countries": ["RU"], "price_per_part": "0.40"},
        {"provider": "mts", "operators": ["MTS"], "price_per_part": 0.3, "classes": ["otp"]},
        {"provider": "agg", "prefixes": ["+375"], "price_per_part": 2, "weight": 2},
    ],
}


def test_documented_example_parses() -> None:
    doc = routing.config.__doc__ or ""
    example = textwrap.dedent(doc[doc.index("    [routing]") :])
    table = load_table(tomllib.loads(example), {"mts"})
    (entry,) = table.entries
    assert (entry.provider, entry.operators, entry.countries) == ("mts", ("mts",), ("RU",))
    assert entry.price_per_part == Decimal("0.35") and entry.numeric_sender == "79001234567"
    assert table.policy.wait_for_price == {"bulk"} and table.policy.breaker.probes == 3
    assert table.resolve("+79031234567").operator == "mts"  # ported


def test_good_config_and_defaults() -> None:
    table = load_table(GOOD, PROVIDERS)
    assert [e.name for e in table.entries] == ["routes[0]", "routes[1]", "routes[2]"]
    assert table.entries[1].price_per_part == Decimal("0.3")
    assert table.entries[0].classes == {"otp", "transactional", "bulk"}
    assert table.policy.max_route_attempts == 2 and table.policy.breaker.probes == 1
    assert load_table({}, PROVIDERS).policy.wait_for_price == {"bulk"}


def _set(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    *parents, last = path.split("/")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()
BAD = [
    ("routes/2/price_per_part", "cheap", "routes[2].price_per_part", "must be a decimal"),
    ("routes/2/price_per_part", "-1", "routes[2].price_per_part", "non-negative"),
    ("routes/2/price_per_part", _DELETE, "routes[2].price_per_part", "required"),
    ("routes/0/provider", "beeline", "routes[0].provider", "unknown provider 'beeline'"),
    ("routes/0/provider", _DELETE, "routes[0].provider", "required"),
    ("routes/0/colour", "red", "routes[0].colour", "unknown key"),
    ("routes/0/countries", ["Russia"], "routes[0].countries[0]", "unknown country"),
    ("routes/0/countries", "RU", "routes[0].countries", "must be a list"),
    ("routes/0/countries", _DELETE, "routes[0]", "needs prefixes, countries or operators"),
    ("routes/0/prefixes", ["+7"], "routes[0].countries", "cannot be combined with prefixes"),
    ("routes/2/prefixes", ["375"], "routes[2].prefixes[0]", "E.164 prefix"),
    ("routes/1/classes", ["urgent"], "routes[1].classes[0]", "one of otp, transactional, bulk"),
    ("routes/1/classes", [], "routes[1].classes", "at least one class"),
    ("routes/2/weight", 0, "routes[2].weight", "at least 1"),
    ("routes/2/weight", "2", "routes[2].weight", "must be an integer"),
    ("routes/2/numeric_sender", "ACME", "routes[2].numeric_sender", "numeric sender"),
    ("routes/2/senders", [""], "routes[2].senders[0]", "non-empty string"),
    ("routes", {}, "routes", "list of tables"),
    ("routing/wait_for_price", ["otp"], "routing.wait_for_price[0]", "otp never waits"),
    ("routing/max_route_attempts", 0, "routing.max_route_attempts", "at least 1"),
    ("routing/breaker/error_rate", 1.5, "routing.breaker.error_rate", "ratio"),
    ("routing/breaker/probes", 1.5, "routing.breaker.probes", "must be an integer"),
    ("routing/breaker/cool_down_s", 0, "routing.breaker.cool_down_s", "positive"),
    ("routing/breaker/colour", 1, "routing.breaker.colour", "unknown key"),
    ("routing/ported", {"89031234567": "MTS"}, "routing.ported.89031234567", "E.164"),
    ("routing/ported", {"+79031234567": 5}, "routing.ported.+79031234567", "string"),
    ("routing/typo", 1, "routing.typo", "unknown key"),
]


@pytest.mark.parametrize(("path", "value", "key", "message"), BAD)
def test_errors_name_the_key(path: str, value: Any, key: str, message: str) -> None:
    with pytest.raises(RouteConfigError) as caught:
        load_table(_set(path, value), PROVIDERS)
    assert caught.value.key == key
    assert message in caught.value.message
    assert str(caught.value).startswith(f"{key}: ")


def test_entries_that_would_tie_are_refused() -> None:
    twice = _set("routes/2/prefixes", ["+375", "+7"])
    twice["routes"].append({"provider": "agg", "prefixes": ["+7"], "price_per_part": "1"})
    with pytest.raises(RouteConfigError) as caught:
        load_table(twice, PROVIDERS)
    assert caught.value.key == "routes[3].prefixes"
    assert "+7 already routes bulk to agg in routes[2]" in caught.value.message
    by_class = copy.deepcopy(GOOD)
    by_class["routes"].append(
        {"provider": "mts", "operators": ["mts"], "price_per_part": "1", "classes": ["bulk"]}
    )
    load_table(by_class, PROVIDERS)  # same operator, other class: no tie
    catch_all = copy.deepcopy(GOOD)
    catch_all["routes"] += [
        {"provider": "agg", "prefixes": ["+"], "price_per_part": "1"},
        {"provider": "agg", "countries": ["*"], "price_per_part": "2"},
    ]
    with pytest.raises(RouteConfigError, match=r"routes\[4\]\.countries"):
        load_table(catch_all, PROVIDERS)


def test_operator_aliases_extend_the_builtin_ones() -> None:
    data = copy.deepcopy(GOOD)
    data["routing"]["operator_aliases"] = {"Мотив": "Motiv"}
    data["routes"].append({"provider": "agg", "operators": ["Мотив"], "price_per_part": "1"})
    table = load_table(data, PROVIDERS)
    assert table.entries[-1].operators == ("motiv",)
    assert table.entries[1].operators == ("mts",)
