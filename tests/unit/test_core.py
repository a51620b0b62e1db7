"""Pure core: lifecycle, ids, signing, scheduling, receipts-to-states, masking."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import lifecycle, signing
from gateway.core.ids import IdGenerator, id_time_ms
from gateway.core.lifecycle import State
from gateway.core.masking import mask_phone, mask_text
from gateway.core.receipts import IdForms, early_keys, message_outcome, part_key, receipt_keys
from gateway.core.scheduling import GiveUp, RetryLater, WeightedPicker, after_temporary_failure

states = st.sampled_from(list(State))


@given(st.lists(states, max_size=20))
def test_advance_never_moves_backwards(events: list[State]) -> None:
    current = State.ACCEPTED
    for event in events:
        new = lifecycle.advance(current, event)
        assert new.rank >= current.rank
        if current.is_final:
            assert new == current
        current = new


def test_late_submitted_after_delivered_changes_nothing() -> None:
    assert lifecycle.advance(State.DELIVERED, State.SUBMITTED) is State.DELIVERED
    with pytest.raises(lifecycle.IllegalTransition):
        lifecycle.require(State.DELIVERED, State.SUBMITTED)


def test_codes_encode_rank_for_sql() -> None:
    for a, b in itertools.product(State, State):
        allowed = lifecycle.can_move(a, b)
        assert allowed == (a.value // 10 < b.value // 10), (a, b)


def test_ids_unique_and_ordered_even_in_a_burst() -> None:
    gen = IdGenerator(node=7, clock=lambda: 1_800_000_000.0)
    ids = [gen.next() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert abs(id_time_ms(ids[0]) - 1_800_000_000_000) < 5


def test_ids_of_two_nodes_never_collide() -> None:
    clock = lambda: 1_800_000_000.0  # noqa: E731
    a, b = IdGenerator(1, clock), IdGenerator(2, clock)
    assert not {a.next() for _ in range(5000)} & {b.next() for _ in range(5000)}


def test_signature_matches_the_standard_webhooks_example() -> None:
    # The reference vector from the Standard Webhooks specification's libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@given(st.binary(max_size=200), st.text(min_size=1, max_size=20))
def test_sign_then_verify(body: bytes, webhook_id: str) -> None:
    secret = signing.new_secret()
    headers = signing.headers(secret, webhook_id, 1000, body)
    assert signing.verify(secret, headers, body, now=1000)
    assert not signing.verify(secret, headers, body + b"x", now=1000)
    assert not signing.verify(secret, headers, body, now=2000)


def test_picker_weights_and_no_starvation() -> None:
    picker = WeightedPicker((16, 4, 1))
    picks = [picker.pick([True, True, True]) for _ in range(210)]
    assert picks.count(0) == 160 and picks.count(1) == 40 and picks.count(2) == 10
    assert picker.pick([False, False, True]) == 2
    assert picker.pick([False, False, False]) is None


def test_retry_within_validity_else_expired() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    later = after_temporary_failure(1, 10, 1.0, now + timedelta(hours=1), now, 2.0, 60.0)
    assert isinstance(later, RetryLater) and later.delay_s >= 1.0
    soon = after_temporary_failure(1, 10, 30.0, now + timedelta(seconds=10), now, 2.0, 60.0)
    assert soon == GiveUp(State.EXPIRED)
    assert after_temporary_failure(10, 10, 1.0, None, now, 2.0, 60.0) == GiveUp(State.FAILED)


def test_message_outcome_needs_every_part() -> None:
    assert message_outcome(3, 2, None) is None
    assert message_outcome(3, 3, None) is State.DELIVERED
    assert message_outcome(3, 1, State.UNDELIVERABLE) is State.UNDELIVERABLE


@given(st.integers(min_value=1, max_value=2**63))
def test_hex_submit_and_decimal_receipt_meet(n: int) -> None:
    stored = part_key(format(n, "X"))
    assert stored in receipt_keys(str(n))
    forms = IdForms(submit_base=16, receipt_base=10)
    assert receipt_keys(str(n), forms) == (part_key(format(n, "X"), forms),)
    assert part_key(format(n, "X"), forms) in early_keys(format(n, "X"), forms)


def test_masking_hides_the_number_and_the_text() -> None:
    assert mask_phone("+79211234567") == "+79*******67"
    assert "Привет" not in mask_text("Привет, ваш код 1234")
