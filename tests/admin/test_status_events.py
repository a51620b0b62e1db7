"""Parsing and folding the gateway's status events, and the rows they wait for (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from admin.core.replies import parse_inbound_entry
from admin.core.status_events import Parked, StatusEvent, fold, parse_entry
from gateway.core.lifecycle import State

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)


def ev(mid: int, state: State, minute: int, client: int = 1) -> StatusEvent:
    return StatusEvent(mid, client, state, T0 + timedelta(minutes=minute), "p", None)


def test_parse_reads_what_the_gateway_writes_and_skips_the_rest() -> None:
    items = [
        {"id": "5", "client_id": "1", "status": "delivered", "at": T0.isoformat(),
         "provider": "smsc", "price": "0.70", "parts": "2"},
        {"id": "6", "client_id": "1", "status": "teleported", "at": T0.isoformat()},
        "junk",
        {"id": "7", "client_id": "1", "status": "delivered", "at": T0.isoformat(), "price": "1e20"},
        {"id": "8", "client_id": "1", "status": "delivered", "at": "2026-11-23T10:00:00"},
    ]  # fmt: skip
    events, bad = parse_entry({b"v": b"1", b"events": json.dumps(items).encode()})
    assert bad == 4
    assert events == [StatusEvent(5, 1, State.DELIVERED, T0, "smsc", None, Decimal("0.70"), 2)]
    assert parse_entry({b"v": b"1"}) == ([], 1)


def test_fold_keeps_the_furthest_state_and_every_time() -> None:
    [change] = fold([ev(1, State.DELIVERED, 5), ev(1, State.SUBMITTED, 1), ev(1, State.QUEUED, 0)])
    assert change.state is State.DELIVERED
    assert (change.submitted_at, change.delivered_at) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=5),
    )


states = st.sampled_from(list(State))


@given(st.lists(st.tuples(st.integers(1, 4), states, st.integers(0, 100)), min_size=1))
def test_fold_never_goes_back(items: list[tuple[int, State, int]]) -> None:
    changes = fold([ev(m, s, t) for m, s, t in items])
    assert [c.message_id for c in changes] == sorted({m for m, _, _ in items})
    for change in changes:
        ranks = [s.rank for m, s, _ in items if m == change.message_id]
        assert change.state.rank == max(ranks)
        assert (change.final_at is not None) == change.state.is_final


def test_parked_events_come_back_after_their_delay_then_go() -> None:
    parked = Parked(delays=(1.0, 5.0))
    parked.park([ev(1, State.DELIVERED, 0)], now=0.0)
    assert parked.due(0.5) == []
    [(attempt, events)] = parked.due(1.0)
    assert attempt == 0 and [e.message_id for e in events] == [1]
    parked.park(events, now=1.0, attempt=1)
    assert parked.due(5.9) == [] and len(parked.due(6.0)) == 1
    parked.park(events, now=6.0, attempt=2)  # out of attempts: dropped
    assert len(parked) == 0


def test_once_the_campaign_client_is_known_others_are_not_parked() -> None:
    parked = Parked(limit=3)
    parked.learn({1})
    parked.park([ev(1, State.DELIVERED, 0, client=2)], now=0.0)
    assert len(parked) == 0
    parked.park([ev(m, State.DELIVERED, 0) for m in range(5)], now=0.0)
    assert len(parked) == 3 and parked.dropped == 2


def test_inbound_entries_give_replies() -> None:
    item = {"type": "message.inbound", "data": {"id": "9", "from": "+79161230001", "to": "Shop",
            "text": "СТОП", "action": "opt_out", "received_at": T0.isoformat()}}  # fmt: skip
    replies, bad = parse_inbound_entry({b"messages": json.dumps([item, {}]).encode()})
    assert bad == 1 and len(replies) == 1
    assert replies[0].opt_out and not replies[0].opt_in and replies[0].phone == "+79161230001"
