"""Which priority to serve next, and what to do after a temporary failure (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.lifecycle import State
from providers.backoff import backoff_delay


class WeightedPicker:
    """Smooth weighted round robin over the classes that have work.

    With weights (16, 4, 1) and all three busy, OTP gets 16 of every 21 turns and bulk
    still one: priority without starvation. An idle class's turns go to the others.
    """

    def __init__(self, weights: Sequence[int]) -> None:
        if not weights or any(w <= 0 for w in weights):
            raise ValueError("weights must be positive")
        self._weights = tuple(weights)
        self._current = [0] * len(weights)

    def pick(self, has_work: Sequence[bool]) -> int | None:
        candidates = [i for i, busy in enumerate(has_work) if busy]
        if not candidates:
            return None
        total = sum(self._weights[i] for i in candidates)
        for i in candidates:
            self._current[i] += self._weights[i]
        best = max(candidates, key=lambda i: self._current[i])
        self._current[best] -= total
        return best


@dataclass(frozen=True, slots=True)
class RetryLater:
    delay_s: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    state: State


def after_temporary_failure(
    attempts: int,
    max_attempts: int,
    retry_after: float,
    expires_at: datetime | None,
    now: datetime,
    base_s: float,
    cap_s: float,
) -> RetryLater | GiveUp:
    """Retry with backoff (never sooner than the provider asked) within the validity."""
    if attempts >= max_attempts:
        return GiveUp(State.FAILED)
    delay = max(retry_after, backoff_delay(attempts - 1, base_s, cap_s))
    if expires_at is not None and now + timedelta(seconds=delay) >= expires_at:
        return GiveUp(State.EXPIRED)
    return RetryLater(delay)
