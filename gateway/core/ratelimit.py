"""A smooth token bucket (pure): the caller asks how long to wait, and does the waiting.

An operator that allows 100 submit_sm/s refuses 100 sent in 10 ms, so the bucket holds
only a small burst (50 ms worth by default) and paces the rest evenly. Taking more than
is there leaves a debt that later callers wait out in order, so a multi-part message is
never refused for being larger than the burst.
"""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 0.05)
        self._tokens = self.burst
        self._last = now

    def take(self, n: float, now: float) -> float:
        """Take ``n`` tokens; returns how many seconds to wait before using them."""
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = max(now, self._last)
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
