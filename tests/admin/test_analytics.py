"""Rates, funnel, percentiles and the A/B test (admin/core/analytics.py); and the parsing
of conversions (admin/core/conversions.py)."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admin.core.analytics import (
    Counts,
    ab_tests,
    bucket_unit,
    compare,
    fill_timeline,
    funnel,
    percentile,
    rate,
)
from admin.core.conversions import InvalidConversion, parse_conversion

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_rate_of_nothing_is_none() -> None:
    assert rate(0, 0) is None
    assert rate(3, 4) == 0.75


def test_counts_derive_rates_and_cost_per_conversion() -> None:
    c = Counts(sent=200, delivered=180, clicks_unique=45, conversions=9, cost=Decimal("90.00"))
    assert c.delivery_rate == 0.9
    assert c.click_rate == 0.25
    assert c.conversion_rate == 0.05
    assert c.cost_per_conversion == Decimal("10.00")
    assert Counts().cost_per_conversion is None


def test_funnel_shares() -> None:
    steps = funnel(Counts(sent=100, delivered=80, clicks_unique=20, conversions=5))
    assert [(s.label, s.count) for s in steps] == [
        ("Sent", 100),
        ("Delivered", 80),
        ("Clicked", 20),
        ("Converted", 5),
    ]
    assert steps[0].of_previous is None
    assert steps[2].of_first == 0.2 and steps[2].of_previous == 0.25
    assert funnel(Counts())[1].of_first is None


def test_percentile_matches_the_usual_definition() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(st.floats(0, 1e6), min_size=2, max_size=50))
def test_percentile_agrees_with_statistics(values: list[float]) -> None:
    expected = statistics.quantiles(values, n=100, method="inclusive")
    assert percentile(values, 50) == pytest.approx(statistics.median(values), rel=1e-9, abs=1e-9)
    assert percentile(values, 95) == pytest.approx(expected[94], rel=1e-9, abs=1e-6)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_is_within_the_values(values: list[float], p: float) -> None:
    found = percentile(values, p)
    assert found is not None and min(values) <= found <= max(values)


def test_a_clear_difference_is_significant() -> None:
    result = compare(100, 1000, 150, 1000)
    assert result.significant and result.winner == "B"
    assert result.z is not None and result.z == pytest.approx(
        3.381, abs=1e-3
    )  # .05/sqrt(.125*.875*.002)
    assert result.p_value is not None and result.p_value < 0.001


def test_a_small_difference_is_not() -> None:
    result = compare(100, 1000, 105, 1000)
    assert not result.significant and result.winner is None
    assert result.difference == pytest.approx(0.005)


def test_too_few_samples_decide_nothing() -> None:
    result = compare(0, 10, 10, 10)
    assert result.z is None and result.winner is None and result.difference == 1.0


def test_counts_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        compare(11, 10, 1, 10)


@given(st.integers(30, 5000), st.integers(30, 5000), st.data())
def test_the_test_is_symmetric(total_a: int, total_b: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, total_a))
    b = data.draw(st.integers(0, total_b))
    ab, ba = compare(a, total_a, b, total_b), compare(b, total_b, a, total_a)
    assert ab.p_value is not None and ba.p_value is not None
    assert math.isclose(ab.p_value, ba.p_value)
    assert 0 <= ab.p_value <= 1
    assert ab.significant == ba.significant
    assert {ab.winner, ba.winner} in ({None}, {"A", "B"})


def test_a_conversion_by_phone() -> None:
    found = parse_conversion(
        {"phone": "8 921 123-45-67", "event": "purchase", "value": "1990.5", "external_id": "o-1"},
        NOW,
    )
    assert found.phone == "+79211234567" and found.contact_id is None
    assert found.value == Decimal("1990.5000") and found.currency == "RUB" and found.at == NOW


def test_a_conversion_by_contact_with_its_time() -> None:
    at = "2026-11-23T14:00:00+03:00"
    found = parse_conversion(
        {"contact_id": 7, "event": "signup", "at": at, "external_id": "x"}, NOW
    )
    assert found.contact_id == 7 and found.at == NOW - timedelta(hours=1)
    assert found.value is None and found.currency is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"event": "e", "external_id": "x"}, "phone"),
        ({"phone": "+79211234567", "contact_id": 1, "event": "e", "external_id": "x"}, "phone"),
        ({"phone": "12", "event": "e", "external_id": "x"}, "phone"),
        ({"contact_id": "1", "event": "e", "external_id": "x"}, "contact_id"),
        ({"contact_id": True, "event": "e", "external_id": "x"}, "contact_id"),
        ({"contact_id": 1, "event": "Bad Event", "external_id": "x"}, "event"),
        ({"contact_id": 1, "event": "e"}, "external_id"),
        ({"contact_id": 1, "event": "e", "external_id": "x", "value": "NaN"}, "value"),
        ({"contact_id": 1, "event": "e", "external_id": "x", "value": -1}, "value"),
        ({"contact_id": 1, "event": "e", "external_id": "x", "value": [1]}, "value"),
        ({"contact_id": 1, "event": "e", "external_id": "x", "currency": "rub"}, "currency"),
        ({"contact_id": 1, "event": "e", "external_id": "x", "at": "2026-11-23"}, "at"),
        ({"contact_id": 1, "event": "e", "external_id": "x", "at": "2027-01-01T00:00Z"}, "at"),
        ({"contact_id": 1, "event": "e", "external_id": "x", "at": 5}, "at"),
        ([], ""),
    ],
)
def test_bad_conversions_name_the_field(data: object, field: str) -> None:
    with pytest.raises(InvalidConversion) as caught:
        parse_conversion(data, NOW)
    assert caught.value.field == field


FIELDS = ("phone", "contact_id", "event", "value", "currency", "at", "external_id")
VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats())


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), VALUES))
def test_any_input_parses_or_names_a_field(data: dict[str, object]) -> None:
    try:
        parse_conversion(data, NOW)
    except InvalidConversion as exc:
        assert exc.field in FIELDS


def test_bucket_unit_keeps_the_chart_readable() -> None:
    assert bucket_unit(NOW, NOW + timedelta(hours=2)) == "minute"
    assert bucket_unit(NOW, NOW + timedelta(days=3)) == "hour"
    assert bucket_unit(NOW, NOW + timedelta(days=300)) == "day"


def test_fill_timeline_puts_zeros_in_quiet_buckets() -> None:
    minute = timedelta(minutes=1)
    rows = [(NOW, "sent", 5), (NOW + 3 * minute, "sent", 2), (NOW + 3 * minute, "delivered", 4)]
    filled = fill_timeline(rows, ("sent", "delivered"), "minute")
    assert [v for _, v in filled["sent"]] == [5.0, 0.0, 0.0, 2.0]
    assert [v for _, v in filled["delivered"]] == [0.0, 0.0, 0.0, 4.0]
    assert filled["sent"][1][0] == NOW + minute
    assert fill_timeline([], ("sent",), "hour") == {"sent": []}


def test_ab_tests_compare_each_variant_with_the_first() -> None:
    a = Counts(sent=1000, delivered=900, clicks_unique=90, conversions=9)
    b = Counts(sent=1000, delivered=950, clicks_unique=190, conversions=10)
    [test] = ab_tests({"B": b, "A": a})
    assert (test.variant, test.control) == ("B", "A")
    assert test.delivery.winner == "B" and test.clicks.winner == "B"
    assert test.conversions.winner is None
    assert ab_tests({"A": a}) == []


def test_the_analytics_core_imports_no_io() -> None:
    modules = "analytics, attribution, charts, conversions, replies, status_events"
    code = f"import sys; from admin.core import {modules}; print(' '.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    io = ("asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket", "pyarrow", "jinja2")
    assert not sorted(m for m in loaded if m.split(".")[0] in io)
