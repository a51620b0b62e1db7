"""The token bucket never lets more through than rate × time + burst, and is smooth."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.ratelimit import TokenBucket


@given(
    st.floats(1, 1000),
    st.lists(st.tuples(st.floats(0, 0.05), st.integers(1, 5)), min_size=1, max_size=200),
)
def test_sends_at_the_returned_times_respect_the_rate(
    rate: float, calls: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate)
    now, sends = 0.0, []
    for gap, n in calls:
        now += gap
        sends.append((now + bucket.take(n, now), n))
    start = sends[0][0]
    for at, _ in sends:
        sent = sum(n for t, n in sends if start <= t <= at)
        assert sent <= rate * (at - start) + bucket.burst + 5 + 1e-6


def test_a_burst_of_100_at_100_per_second_is_spread_over_a_second() -> None:
    bucket = TokenBucket(100.0)
    waits = [bucket.take(1, 0.0) for _ in range(100)]
    assert waits[0] == 0.0 and 0.9 < waits[-1] <= 1.0
