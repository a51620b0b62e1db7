"""The benchmark's progress line, read from the gateway's summed counters (pure part)."""

from __future__ import annotations

from loadtest.progress import Counts, from_totals

Totals = dict[tuple[str, str, tuple[str, ...]], float]


def _totals(accepted: dict[str, float], states: dict[tuple[str, str], float]) -> Totals:
    found: Totals = {("smsgw_messages_accepted_total", "", (p,)): v for p, v in accepted.items()}
    found |= {("smsgw_messages_total", "", labels): v for labels, v in states.items()}
    found[("smsgw_queue_latency_seconds", "count", ("a",))] = 999.0  # not a count of messages
    return found


def test_counts_add_up_over_priorities_and_providers() -> None:
    totals = _totals(
        {"bulk": 900, "otp": 100},
        {("submitted", "a"): 600, ("submitted", "b"): 300, ("delivered", "a"): 500,
         ("undeliverable", "b"): 100},
    )  # fmt: skip
    assert from_totals(totals) == Counts(total=1000, submitted=900, final=600, main_submitted=800)


def test_a_message_failed_before_any_provider_still_counts_as_past_submitted() -> None:
    totals = _totals({"bulk": 10}, {("failed", "none"): 10})
    assert from_totals(totals) == Counts(total=10, submitted=10, final=10, main_submitted=10)


def test_no_counters_yet_is_zero() -> None:
    assert from_totals({}) == Counts()
