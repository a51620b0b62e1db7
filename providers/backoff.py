"""Retry delays as a pure function: the caller does the sleeping (as redis-py's backoff does)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int,
    base: float = 0.5,
    cap: float = 60.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, never above ``cap``.

    ``attempt`` counts from 0. Half of the delay is kept fixed so that a crowd of retrying
    clients never retries at once (full jitter can pick ~0) yet still spreads out.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt, 62))
    return ceiling / 2 + rand() * ceiling / 2
