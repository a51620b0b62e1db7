"""Adaptive window: additive increase, multiplicative decrease (AIMD), as TCP does. PURE.

One ``Aimd`` value per connection; every answer to a request in the window goes through
``answered``, which returns the next value. The window (a float; ``size`` is the integer
the sender obeys) grows by ``increase / window`` per fast, accepted answer, that is by
about ``increase`` per round trip, up to ``window_max``. It shrinks to ``decrease`` times
itself on a congestion signal:

- the peer said so (``congested=True``: SMPP ESME_RTHROTTLED / ESME_RMSGQFUL, a timeout);
- the answers slowed: the latency average (EWMA) rose above the larger of
  ``latency_target`` and ``latency_factor`` × the fastest answer seen (the floor).

A cut happens at most once per round trip (the answers of one window report the same
congestion, and must not cut it to the floor) and once per ``cut_interval`` (on loopback a
round trip is a millisecond: an SMSC refusing a steady fifth of the submits then cut the
window to its floor every few milliseconds, and ~100 messages/s went through where 80 %
of the rate should), and never below ``window_min``. No clock is
read here: the caller passes ``now`` and each answer's latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AimdSettings:
    window_min: int = 1
    window_max: int = 100
    latency_target: float = 0.5  # seconds
    latency_factor: float = 10.0
    increase: float = 1.0  # per round trip
    decrease: float = 0.5  # the share of the window kept on a cut
    smoothing: float = 0.1  # weight of the newest latency in the average
    cut_interval: float = 0.1  # seconds: the least time between two cuts

    def __post_init__(self) -> None:
        if not 1 <= self.window_min <= self.window_max:
            raise ValueError("need 1 <= window_min <= window_max")
        if not 0 < self.decrease < 1 or not 0 < self.smoothing <= 1 or self.increase <= 0:
            raise ValueError("need 0 < decrease < 1, 0 < smoothing <= 1, increase > 0")
        if self.cut_interval < 0:
            raise ValueError("need cut_interval >= 0")


@dataclass(frozen=True, slots=True)
class Aimd:
    window: float
    latency: float | None = None  # the EWMA of answer latencies, seconds
    floor: float = math.inf  # the fastest answer seen
    last_cut: float = -math.inf  # ``now`` of the last decrease

    @property
    def size(self) -> int:
        return int(self.window)


def start(settings: AimdSettings) -> Aimd:
    """A new connection starts at the full window: the peer has not complained yet."""
    return Aimd(float(settings.window_max))


def answered(
    settings: AimdSettings, state: Aimd, now: float, latency: float, congested: bool = False
) -> Aimd:
    """The state after one answer that took ``latency`` seconds."""
    average = latency if state.latency is None else _ewma(settings, state.latency, latency)
    floor = min(state.floor, latency)
    if congested or average > max(settings.latency_target, settings.latency_factor * floor):
        return _cut(settings, state, now, average, floor)
    window = min(float(settings.window_max), state.window + settings.increase / state.window)
    return Aimd(window, average, floor, state.last_cut)


def congested(settings: AimdSettings, state: Aimd, now: float) -> Aimd:
    """A congestion signal with no latency to learn from (a timeout, a lost link)."""
    return _cut(settings, state, now, state.latency, state.floor)


def _cut(
    settings: AimdSettings, state: Aimd, now: float, average: float | None, floor: float
) -> Aimd:
    round_trip = average if average is not None else 0.0
    if now - state.last_cut < max(round_trip, settings.cut_interval):
        return Aimd(state.window, average, floor, state.last_cut)
    window = max(float(settings.window_min), state.window * settings.decrease)
    return Aimd(window, average, floor, now)


def _ewma(settings: AimdSettings, average: float, sample: float) -> float:
    return average + settings.smoothing * (sample - average)
