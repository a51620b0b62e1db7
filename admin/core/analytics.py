"""Campaign analytics from counts and rows. Pure.

The SQL (``admin/adapters/analytics_store.py``) counts; this module turns counts into what
people read: rates, the funnel, percentiles of time to deliver, and the A/B verdict. The
A/B comparison is a two-proportion z-test on the counts (pooled standard error, two-sided
p-value from the normal distribution), which holds for the sample sizes campaigns have;
below ``MIN_SAMPLE`` per variant it declines to call a winner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

MIN_SAMPLE = 30
UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 720  # a line chart wider than this in points is a smear
ALPHA = 0.05


def rate(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is no whole to speak of."""
    return part / whole if whole > 0 else None


@dataclass(frozen=True, slots=True)
class Counts:
    """What a campaign (or one variant, or one segment) did."""

    sent: int = 0  # handed to the gateway (every campaign message)
    delivered: int = 0
    failed: int = 0  # undeliverable, rejected or failed
    expired: int = 0
    pending: int = 0  # not final yet
    cost: Decimal = Decimal(0)
    opt_outs: int = 0
    clicks_unique: int = 0
    clicks_total: int = 0
    replies: int = 0
    conversions: int = 0
    conversion_value: Decimal = Decimal(0)
    p50_s: float | None = None  # time to deliver
    p95_s: float | None = None

    @property
    def delivery_rate(self) -> float | None:
        return rate(self.delivered, self.sent)

    @property
    def click_rate(self) -> float | None:
        return rate(self.clicks_unique, self.delivered)

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.conversions, self.delivered)

    @property
    def cost_per_conversion(self) -> Decimal | None:
        return (
            (self.cost / self.conversions).quantize(Decimal("0.01")) if self.conversions else None
        )


@dataclass(frozen=True, slots=True)
class Step:
    label: str
    count: int
    of_first: float | None
    of_previous: float | None


FUNNEL = (
    ("Sent", "sent"),
    ("Delivered", "delivered"),
    ("Clicked", "clicks_unique"),
    ("Converted", "conversions"),
)


def funnel(counts: Counts) -> list[Step]:
    """Sent → delivered → clicked → converted, each with its share of the first and previous."""
    values = [(label, int(getattr(counts, name))) for label, name in FUNNEL]
    first = values[0][1]
    return [
        Step(label, n, rate(n, first), rate(n, values[i - 1][1]) if i else None)
        for i, (label, n) in enumerate(values)
    ]


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100) with linear interpolation between ranks (as numpy's
    default and PostgreSQL's ``percentile_cont``); None for no values."""
    if not 0 <= p <= 100:
        raise ValueError("p is 0..100")
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Variant B against variant A on one proportion (delivery, clicks, conversions)."""

    rate_a: float | None
    rate_b: float | None
    difference: float | None  # rate_b - rate_a
    z: float | None
    p_value: float | None
    significant: bool
    winner: str | None  # "A", "B", or None when the data cannot tell


def compare(success_a: int, total_a: int, success_b: int, total_b: int) -> Comparison:
    """Two-proportion z-test of ``success/total`` between A and B at ``ALPHA``."""
    _check(success_a, total_a)
    _check(success_b, total_b)
    rate_a, rate_b = rate(success_a, total_a), rate(success_b, total_b)
    if rate_a is None or rate_b is None or min(total_a, total_b) < MIN_SAMPLE:
        return Comparison(rate_a, rate_b, _diff(rate_a, rate_b), None, None, False, None)
    z = _z(success_a, total_a, success_b, total_b)
    p_value = math.erfc(abs(z) / math.sqrt(2))
    significant = p_value < ALPHA
    winner = ("B" if z > 0 else "A") if significant else None
    return Comparison(rate_a, rate_b, rate_b - rate_a, z, p_value, significant, winner)


def _z(success_a: int, total_a: int, success_b: int, total_b: int) -> float:
    pooled = (success_a + success_b) / (total_a + total_b)
    error = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if error == 0:
        return 0.0  # both all-or-nothing alike: no difference to test
    return (success_b / total_b - success_a / total_a) / error


def _diff(a: float | None, b: float | None) -> float | None:
    return b - a if a is not None and b is not None else None


def _check(success: int, total: int) -> None:
    if not 0 <= success <= total:
        raise ValueError(f"successes {success} not within 0..{total}")


def bucket_unit(start: datetime, end: datetime) -> str:
    """The finest of minute, hour, day that draws ``start..end`` in at most MAX_BUCKETS."""
    span = end - start
    return next((u for u, step in UNITS.items() if span / step <= MAX_BUCKETS), "day")


def fill_timeline(
    rows: Sequence[tuple[datetime, str, int]], kinds: Sequence[str], unit: str
) -> dict[str, list[tuple[datetime, float]]]:
    """Per kind, a point for every bucket from the first to the last (zero where none):
    a line over a quiet minute must drop to zero, not skip it."""
    step = UNITS[unit]
    found = {(t, kind): n for t, kind, n in rows}
    times = sorted({t for t, _, _ in rows})
    if not times:
        return {kind: [] for kind in kinds}
    count = min(int((times[-1] - times[0]) / step), 10 * MAX_BUCKETS) + 1
    buckets = [times[0] + step * i for i in range(count)]
    return {kind: [(t, float(found.get((t, kind), 0))) for t in buckets] for kind in kinds}


@dataclass(frozen=True, slots=True)
class VariantTest:
    """One variant against the first (the control) on each rate people compare."""

    variant: str
    control: str
    delivery: Comparison
    clicks: Comparison
    conversions: Comparison


def ab_tests(variants: Mapping[str, Counts]) -> list[VariantTest]:
    """Each variant after the first against the first: delivered of sent, clicked and
    converted of delivered."""
    names = sorted(variants)
    if len(names) < 2:
        return []
    control = variants[names[0]]
    return [
        VariantTest(
            name,
            names[0],
            compare(control.delivered, control.sent, v.delivered, v.sent),
            compare(control.clicks_unique, control.delivered, v.clicks_unique, v.delivered),
            compare(control.conversions, control.delivered, v.conversions, v.delivered),
        )
        for name, v in ((n, variants[n]) for n in names[1:])
    ]
