"""What the sweeper does with a message it visits (gateway/core/sweeping.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.lifecycle import State
from gateway.core.message import Priority
from gateway.core.sweeping import Action, Visit, decide, receipt_deadline

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TIMEOUT, GRACE = 3600.0, 600.0


def visit(state: State, in_queue: bool = False, due_in: float = -1.0, **times: datetime) -> Visit:
    due = NOW + timedelta(seconds=due_in)
    return Visit(1, state, in_queue, Priority.BULK, due, times.get("submitted_at"),
                 times.get("expires_at"))  # fmt: skip


def test_a_waiting_message_out_of_the_queue_is_enqueued_once_due() -> None:
    assert decide(visit(State.ACCEPTED), NOW, TIMEOUT, GRACE) is Action.ENQUEUE
    assert decide(visit(State.QUEUED, due_in=0.0), NOW, TIMEOUT, GRACE) is Action.ENQUEUE
    assert decide(visit(State.QUEUED, due_in=5.0), NOW, TIMEOUT, GRACE) is Action.LATER


def test_a_queued_message_is_left_to_its_stream() -> None:
    assert decide(visit(State.QUEUED, in_queue=True), NOW, TIMEOUT, GRACE) is Action.NOTHING


def test_a_submitted_message_expires_at_its_receipt_deadline() -> None:
    early = visit(State.SUBMITTED, submitted_at=NOW - timedelta(seconds=TIMEOUT - 1))
    late = visit(State.SUBMITTED, submitted_at=NOW - timedelta(seconds=TIMEOUT))
    assert decide(early, NOW, TIMEOUT, GRACE) is Action.LATER
    assert decide(late, NOW, TIMEOUT, GRACE) is Action.EXPIRE
    invalid = visit(State.SUBMITTED, submitted_at=NOW, expires_at=NOW - timedelta(seconds=GRACE))
    assert decide(invalid, NOW, TIMEOUT, GRACE) is Action.EXPIRE  # its validity ran out


times = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)


@given(
    st.sampled_from(list(State)),
    st.booleans(),
    st.floats(-1e6, 1e6),
    st.one_of(st.none(), times),
    st.one_of(st.none(), times),
)
def test_every_visit_gets_the_action_its_state_needs(
    state: State, in_queue: bool, due_in: float, sent: datetime | None, expires: datetime | None
) -> None:
    seen = visit(state, in_queue, due_in, **({"submitted_at": sent} if sent else {}),
                 **({"expires_at": expires} if expires else {}))  # fmt: skip
    action = decide(seen, NOW, TIMEOUT, GRACE)
    if state.is_final:
        assert action is Action.NOTHING  # an outcome is never touched
    elif state is State.SUBMITTED:
        deadline = receipt_deadline(sent or NOW, expires, TIMEOUT, GRACE)
        assert action is (Action.EXPIRE if deadline <= NOW else Action.LATER)
    elif in_queue:
        assert action is Action.NOTHING  # never enqueued twice by the walk
    else:
        assert action is (Action.ENQUEUE if seen.due_at <= NOW else Action.LATER)
