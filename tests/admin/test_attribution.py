"""Last-touch attribution (admin/core/attribution.py), with properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from admin.core.attribution import (
    CONVERSION_STATES,
    REPLY_STATES,
    Outcome,
    Touch,
    attribute,
    attribute_all,
)

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
WINDOW = timedelta(hours=72)


def touch(mid: int, hours_before: float, status: str = "delivered", contact: int = 1) -> Touch:
    return Touch(contact, 100 + mid, mid, "A", status, T0 - timedelta(hours=hours_before))


def test_the_last_touch_in_the_window_wins() -> None:
    touches = [touch(1, 50), touch(2, 10), touch(3, 30)]
    assert attribute(Outcome(1, T0), touches, WINDOW, CONVERSION_STATES) == touches[1]


def test_touches_outside_the_window_or_after_the_outcome_do_not_count() -> None:
    touches = [touch(1, 73), touch(2, -1)]
    assert attribute(Outcome(1, T0), touches, WINDOW, CONVERSION_STATES) is None


def test_a_failed_or_unsent_message_earns_nothing() -> None:
    touches = [touch(1, 5, "undeliverable"), touch(2, 4, "accepted"), touch(3, 20, "submitted")]
    assert attribute(Outcome(1, T0), touches, WINDOW, CONVERSION_STATES) == touches[2]


def test_a_reply_counts_a_message_whose_receipt_never_came() -> None:
    touches = [touch(1, 5, "expired")]
    assert attribute(Outcome(1, T0), touches, WINDOW, CONVERSION_STATES) is None
    assert attribute(Outcome(1, T0), touches, WINDOW, REPLY_STATES) == touches[0]


def test_another_contacts_touch_never_counts() -> None:
    assert attribute(Outcome(2, T0), [touch(1, 1)], WINDOW, CONVERSION_STATES) is None


def test_equal_times_go_to_the_later_message() -> None:
    touches = [touch(7, 2), touch(9, 2), touch(8, 2)]
    found = attribute(Outcome(1, T0), touches, WINDOW, CONVERSION_STATES)
    assert found is not None and found.message_id == 9


statuses = st.sampled_from(["accepted", "submitted", "delivered", "expired", "failed"])
touches_st = st.lists(
    st.builds(
        Touch,
        contact_id=st.integers(1, 3),
        campaign_id=st.integers(1, 5),
        message_id=st.integers(1, 10**6),
        variant=st.sampled_from(["A", "B", None]),
        status=statuses,
        sent_at=st.integers(-200 * 3600, 10 * 3600).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    max_size=30,
)


@given(touches_st, st.integers(1, 3), st.integers(0, 200))
def test_the_winner_is_eligible_and_no_eligible_touch_is_later(
    touches: list[Touch], contact: int, window_h: int
) -> None:
    window = timedelta(hours=window_h)
    found = attribute(Outcome(contact, T0), touches, window, CONVERSION_STATES)
    eligible = [
        t
        for t in touches
        if t.contact_id == contact
        and t.status in CONVERSION_STATES
        and T0 - window <= t.sent_at <= T0
    ]
    assert (found is None) == (not eligible)
    if found is not None:
        assert found in eligible
        assert all((t.sent_at, t.message_id) <= (found.sent_at, found.message_id) for t in eligible)


@given(touches_st, st.lists(st.integers(1, 3), max_size=5))
def test_batch_attribution_equals_one_by_one(touches: list[Touch], contacts: list[int]) -> None:
    outcomes = [Outcome(c, T0) for c in contacts]
    batch = attribute_all(outcomes, touches, WINDOW, REPLY_STATES)
    assert batch == [attribute(o, touches, WINDOW, REPLY_STATES) for o in outcomes]


@given(touches_st)
def test_order_of_touches_does_not_matter(touches: list[Touch]) -> None:
    forward = attribute(Outcome(1, T0), touches, WINDOW, REPLY_STATES)
    backward = attribute(Outcome(1, T0), list(reversed(touches)), WINDOW, REPLY_STATES)
    key = (lambda t: (t.sent_at, t.message_id)) if forward else None
    assert (forward is None) == (backward is None)
    if forward and backward and key:
        assert key(forward) == key(backward)
