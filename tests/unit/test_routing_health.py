"""routing.health: sliding-window counts and the breaker's transition table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.health import (
    TRANSITIONS,
    Breaker,
    BreakerTransitionError,
    Health,
    Outcome,
    gates,
    trip_reason,
)
from routing.table import BreakerSettings

S = BreakerSettings(
    window_s=60, min_events=10, error_rate=0.5, min_receipts=20, min_delivered_ratio=0.2,
    cool_down_s=30, probes=2,
)  # fmt: skip


def feed(breaker: Breaker, outcome: Outcome, count: int, now: float) -> Breaker:
    for _ in range(count):
        breaker = breaker.record(outcome, now, S)
    return breaker


def test_window_counts_and_slides() -> None:
    health = Health()
    events: list[tuple[float, Outcome]] = [
        (0.0, "ok"),
        (1.0, "temporary_error"),
        (2.0, "delivered"),
        (3.0, "undelivered"),
    ]
    for t, outcome in events:
        health = health.add(outcome, t, 60)
    totals = health.totals(3.0, 60)
    assert (totals.submits, totals.errors, totals.receipts, totals.delivered) == (2, 1, 2, 1)
    assert health.totals(59.0, 60).submits == 2
    assert health.totals(70.0, 60).submits == 0  # everything older than the window is gone
    assert len(health.add("ok", 200.0, 60).slots) == 1


def test_a_burst_of_errors_trips_only_past_min_events() -> None:
    few = feed(Breaker(), "temporary_error", 9, now=1.0)
    assert few.phase == "closed"
    tripped = few.record("temporary_error", 1.0, S)
    assert (tripped.phase, tripped.reason, tripped.since) == ("open", "error_rate", 1.0)


def test_errors_below_the_rate_do_not_trip() -> None:
    mixed = feed(feed(Breaker(), "ok", 20, 1.0), "temporary_error", 19, 2.0)
    assert mixed.phase == "closed"
    assert mixed.record("temporary_error", 2.0, S).phase == "open"  # 20 / 40 = 0.5


def test_old_failures_leave_the_window() -> None:
    old = feed(Breaker(), "temporary_error", 9, now=0.0)
    assert old.record("temporary_error", 100.0, S).phase == "closed"


def test_collapse_of_delivery_trips() -> None:
    breaker = feed(feed(Breaker(), "undelivered", 17, 1.0), "delivered", 3, 1.0)
    assert (breaker.phase, breaker.reason) == ("open", "delivered_ratio")
    fine = feed(feed(Breaker(), "undelivered", 15, 1.0), "delivered", 5, 1.0)
    assert fine.phase == "closed"


def test_open_cools_down_then_lets_n_probes_through() -> None:
    opened = feed(Breaker(), "temporary_error", 10, now=0.0)
    assert opened.gate(29.0, S) == "open"
    assert opened.gate(30.0, S) == "probe"
    one = opened.probe_sent(30.0, S)
    assert (one.phase, one.probes_sent, one.gate(30.0, S)) == ("half_open", 1, "probe")
    two = one.probe_sent(31.0, S)
    assert two.gate(31.0, S) == "open"  # both probes out: wait for their outcome
    with pytest.raises(BreakerTransitionError):
        two.probe_sent(31.0, S)


def test_probe_success_closes_and_failure_reopens() -> None:
    half = feed(Breaker(), "temporary_error", 10, 0.0).probe_sent(30.0, S)
    closed = half.record("ok", 31.0, S)
    assert (closed.phase, closed.gate(31.0, S)) == ("closed", "closed")
    assert closed.health.totals(31.0, 60).submits == 0  # a fresh start after recovery
    reopened = half.record("temporary_error", 31.0, S)
    assert (reopened.phase, reopened.reason, reopened.since) == ("open", "probe_failed", 31.0)
    assert reopened.gate(60.0, S) == "open" and reopened.gate(61.0, S) == "probe"
    assert half.record("delivered", 31.0, S).phase == "half_open"  # receipts do not decide


def test_transition_table_is_the_only_way() -> None:
    assert set(TRANSITIONS) == {
        ("closed", "trip"),
        ("open", "cooled"),
        ("half_open", "probe_ok"),
        ("half_open", "probe_failed"),
    }
    with pytest.raises(BreakerTransitionError, match="cannot take 'cooled' while closed"):
        Breaker().probe_sent(0.0, S)
    assert Breaker(phase="open", since=0.0).record("ok", 1.0, S).phase == "open"


def test_gates_and_trip_reason() -> None:
    opened = feed(Breaker(), "temporary_error", 10, 0.0)
    assert gates({"a": Breaker(), "b": opened}, 1.0, S) == {"a": "closed", "b": "open"}
    assert trip_reason(opened.health.totals(0.0, 60), S) == "error_rate"


@given(st.sampled_from(["ok", "temporary_error", "delivered", "undelivered"]), st.integers(1, 50))
def test_recording_n_at_once_equals_n_times(outcome: Outcome, n: int) -> None:
    settings = BreakerSettings()
    one_by_one = Breaker()
    for _ in range(n):
        one_by_one = one_by_one.record(outcome, 100.0, settings)
    assert Breaker().record(outcome, 100.0, settings, n) == one_by_one
