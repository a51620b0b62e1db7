"""Route health over a sliding window, and a circuit breaker that keeps sick routes out.

Theory of operation. Each route (the dispatcher keys them by provider) keeps counts of
submit outcomes (ok / temporary error) and receipts (delivered / not) in a ring of
time buckets covering the last ``window_s`` seconds; time is always passed in, so the
same events give the same state in a test and in production.

The breaker is a small state machine whose only legal moves are the ``TRANSITIONS``
table (an illegal one raises, as in h11):

    closed ──trip──▶ open ──cooled──▶ half_open ──probe_ok──▶ closed
                      ▲                   │
                      └───probe_failed────┘

It trips on a burst of failures (at least ``min_events`` submits in the window and a
temporary-error share at or over ``error_rate``) or on a collapse of delivery (at least
``min_receipts`` receipts and a delivered share under ``min_delivered_ratio``: a route
that accepts everything and delivers nothing). After ``cool_down_s`` it lets ``probes``
messages through; the first submit outcome of a probe decides. Receipts do not decide a
probe: they come too late. ``choose`` only sees ``gate()``: "closed" (normal), "probe"
(may take a message; the dispatcher then calls ``probe_sent``) or "open" (never chosen).

Report a permanent rejection (bad number, banned text) as "ok": the route answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from routing.table import BreakerSettings

Outcome = Literal["ok", "temporary_error", "delivered", "undelivered"]
Phase = Literal["closed", "open", "half_open"]
Trigger = Literal["trip", "cooled", "probe_ok", "probe_failed"]
Gate = Literal["closed", "probe", "open"]

TRANSITIONS: Mapping[tuple[Phase, Trigger], Phase] = {
    ("closed", "trip"): "open",
    ("open", "cooled"): "half_open",
    ("half_open", "probe_ok"): "closed",
    ("half_open", "probe_failed"): "open",
}

BUCKETS = 12  # per window: the window slides in steps of window_s / 12


class BreakerTransitionError(RuntimeError):
    def __init__(self, phase: Phase, trigger: Trigger) -> None:
        super().__init__(f"breaker cannot take {trigger!r} while {phase}")


@dataclass(frozen=True, slots=True)
class Counts:
    submits: int = 0
    errors: int = 0
    receipts: int = 0
    delivered: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.submits + other.submits,
            self.errors + other.errors,
            self.receipts + other.receipts,
            self.delivered + other.delivered,
        )

    def times(self, n: int) -> Counts:
        return Counts(self.submits * n, self.errors * n, self.receipts * n, self.delivered * n)

    @property
    def error_rate(self) -> float:
        return self.errors / self.submits if self.submits else 0.0

    @property
    def delivered_ratio(self) -> float:
        return self.delivered / self.receipts if self.receipts else 1.0


_ONE: Mapping[Outcome, Counts] = {
    "ok": Counts(submits=1),
    "temporary_error": Counts(submits=1, errors=1),
    "delivered": Counts(receipts=1, delivered=1),
    "undelivered": Counts(receipts=1),
}


@dataclass(frozen=True, slots=True)
class Health:
    """Counts per time slot for the slots still inside the window, oldest first."""

    slots: tuple[tuple[int, Counts], ...] = ()

    def add(self, outcome: Outcome, now: float, window_s: float, times: int = 1) -> Health:
        slot = _slot(now, window_s)
        live = self._live(slot)
        counts = _ONE[outcome] if times == 1 else _ONE[outcome].times(times)
        if live and live[-1][0] >= slot:  # late event (clock not monotonic): newest slot
            last_slot, last = live[-1]
            return Health((*live[:-1], (last_slot, last + counts)))
        return Health((*live, (slot, counts)))

    def totals(self, now: float, window_s: float) -> Counts:
        total = Counts()
        for _, counts in self._live(_slot(now, window_s)):
            total += counts
        return total

    def _live(self, slot: int) -> tuple[tuple[int, Counts], ...]:
        return tuple(s for s in self.slots if s[0] > slot - BUCKETS)


def _slot(now: float, window_s: float) -> int:
    return int(now // (window_s / BUCKETS))


@dataclass(frozen=True, slots=True)
class Breaker:
    phase: Phase = "closed"
    since: float = 0.0  # when the phase began
    probes_sent: int = 0  # in this half-open spell
    health: Health = Health()
    reason: str = ""  # why it last opened: "error_rate", "delivered_ratio", "probe_failed"

    def gate(self, now: float, settings: BreakerSettings) -> Gate:
        if self.phase == "closed":
            return "closed"
        if self.phase == "open" and now - self.since < settings.cool_down_s:
            return "open"
        probing = self.probes_sent if self.phase == "half_open" else 0
        return "probe" if probing < settings.probes else "open"

    def probe_sent(self, now: float, settings: BreakerSettings) -> Breaker:
        """A message went out on this route while its gate said "probe"."""
        if self.gate(now, settings) != "probe":
            raise BreakerTransitionError(self.phase, "cooled")
        if self.phase == "open":
            return replace(self._move("cooled", now), probes_sent=1)
        return replace(self, probes_sent=self.probes_sent + 1)

    def record(
        self, outcome: Outcome, now: float, settings: BreakerSettings, times: int = 1
    ) -> Breaker:
        """Take ``times`` submit outcomes or receipts of one kind; may trip, close or
        reopen the breaker."""
        updated = replace(self, health=self.health.add(outcome, now, settings.window_s, times))
        if self.phase == "half_open" and outcome == "ok":
            return replace(updated._move("probe_ok", now), health=Health())
        if self.phase == "half_open" and outcome == "temporary_error":
            return replace(updated._move("probe_failed", now), reason="probe_failed")
        if self.phase == "closed":
            why = trip_reason(updated.health.totals(now, settings.window_s), settings)
            if why:
                return replace(updated._move("trip", now), reason=why)
        return updated

    def _move(self, trigger: Trigger, now: float) -> Breaker:
        phase = TRANSITIONS.get((self.phase, trigger))
        if phase is None:
            raise BreakerTransitionError(self.phase, trigger)
        return replace(self, phase=phase, since=now, probes_sent=0)


def trip_reason(counts: Counts, settings: BreakerSettings) -> str:
    """Why these counts should open the breaker ("" when they should not)."""
    if counts.submits >= settings.min_events and counts.error_rate >= settings.error_rate:
        return "error_rate"
    if (
        counts.receipts >= settings.min_receipts
        and counts.delivered_ratio < settings.min_delivered_ratio
    ):
        return "delivered_ratio"
    return ""


def gates(
    breakers: Mapping[str, Breaker], now: float, settings: BreakerSettings
) -> dict[str, Gate]:
    """The gate of every route at ``now``, to put into each provider's state."""
    return {name: breaker.gate(now, settings) for name, breaker in breakers.items()}
