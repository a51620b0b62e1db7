"""SVG charts (admin/core/charts.py): valid, accessible, deterministic, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from admin.core.analytics import Counts, funnel
from admin.core.charts import Series, bar_chart, funnel_chart, line_chart, nice_max

NS = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    labelled = (root.get("aria-labelledby") or "").split()
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    assert labelled and set(labelled) <= ids
    return root


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}text")]


def delivered() -> Series:
    return Series("delivered", tuple((T0 + timedelta(minutes=i), float(i * i)) for i in range(10)))


def test_line_chart_has_a_title_axes_labels_and_one_line_per_series() -> None:
    failed = Series("failed", ((T0, 1.0), (T0 + timedelta(minutes=9), 2.0)))
    root = parse(line_chart("Delivery over time", [delivered(), failed], "messages / minute"))
    assert root.find(f"{NS}title").text == "Delivery over time"  # type: ignore[union-attr]
    assert "delivered: 285 in 10 intervals" in (root.find(f"{NS}desc").text or "")  # type: ignore[union-attr]
    labels = texts(root)
    assert {"messages / minute", "time (UTC)", "09:00", "09:09", "100"} <= set(labels)
    assert len(root.findall(f"{NS}polyline")) == 2


def test_line_points_stay_inside_the_plot() -> None:
    root = parse(line_chart("x", [delivered()], "n", width=500))
    points = root.find(f"{NS}polyline").get("points").split()  # type: ignore[union-attr]
    for point in points:
        x, y = map(float, point.split(","))
        assert 56 <= x <= 500 - 16 and 28 <= y <= 260 - 56


def test_empty_line_chart_says_so() -> None:
    assert "no data" in texts(parse(line_chart("Empty", [], "n")))


def test_charts_are_deterministic() -> None:
    steps = funnel(Counts(sent=100, delivered=90, clicks_unique=10, conversions=2))
    assert line_chart("a", [delivered()], "n") == line_chart("a", [delivered()], "n")
    assert funnel_chart("f", steps) == funnel_chart("f", steps)
    bars = [("smsc-a", Decimal("12.50")), ("smsc-b", Decimal("3.10"))]
    assert bar_chart("b", bars, "RUB") == bar_chart("b", bars, "RUB")


def test_funnel_bars_shrink_with_the_counts() -> None:
    steps = funnel(Counts(sent=100, delivered=90, clicks_unique=10, conversions=2))
    root = parse(funnel_chart("Funnel", steps))
    widths = [float(r.get("width") or 0) for r in root.iter(f"{NS}rect")]
    assert widths == sorted(widths, reverse=True) and widths[0] > 0
    assert "Clicked" in texts(root) and "10 (10%)" in texts(root)


def test_bars_scale_to_the_largest_and_show_their_value() -> None:
    root = parse(bar_chart("Cost by provider", [("a", Decimal("10")), ("b", Decimal("5"))], "RUB"))
    widths = [float(r.get("width") or 0) for r in root.iter(f"{NS}rect")]
    assert widths[0] == 2 * widths[1]
    assert "10.00 RUB" in texts(root)


def test_labels_are_escaped() -> None:
    svg = bar_chart("<script>", [("<b>&", 1)], "x")
    root = parse(svg)
    assert "<script>" not in svg and "<b>&" in texts(root)


@given(st.floats(0, 1e12))
def test_nice_max_covers_the_value_within_a_factor(value: float) -> None:
    top = nice_max(value)
    assert top >= value and (value <= 1 or top <= 2.5 * value)


@given(st.lists(st.tuples(st.text(max_size=30), st.integers(0, 10**9)), max_size=8))
def test_any_bars_make_valid_svg(bars: list[tuple[str, int]]) -> None:
    parse(bar_chart("Any", bars, "u"))
