"""The message lifecycle: one table of states, their order, and what may follow what.

A state's code encodes its rank (code // 10), so a batched SQL update can keep the
lifecycle monotonic with one comparison (``m.state / 10 < new.state / 10``) and no
lookup. Every other module asks this one; none spells state codes itself.
"""

from __future__ import annotations

import enum


class State(enum.IntEnum):
    ACCEPTED = 10
    QUEUED = 20
    SUBMITTED = 30
    DELIVERED = 41
    UNDELIVERABLE = 42
    EXPIRED = 43
    REJECTED = 44
    FAILED = 45

    @property
    def rank(self) -> int:
        return self.value // 10

    @property
    def is_final(self) -> bool:
        return self.rank == FINAL_RANK

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> State:
        return cls[label.upper()]


FINAL_RANK = 4
FINAL_STATES = frozenset(s for s in State if s.is_final)

# What may follow each state. Skipping forward is allowed (a receipt can arrive
# before the submit response is recorded; an expired message is never submitted).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.ACCEPTED: frozenset(State) - {State.ACCEPTED},
    State.QUEUED: frozenset(State) - {State.ACCEPTED, State.QUEUED},
    State.SUBMITTED: FINAL_STATES,
    **{s: frozenset() for s in FINAL_STATES},
}


class IllegalTransition(ValueError):
    def __init__(self, current: State, new: State) -> None:
        super().__init__(f"{current.label} -> {new.label}")
        self.current = current
        self.new = new


def can_move(current: State, new: State) -> bool:
    return new in TRANSITIONS[current]


def advance(current: State, new: State) -> State:
    """The state after an event: the new one if allowed, else the current one (never back)."""
    return new if can_move(current, new) else current


def require(current: State, new: State) -> State:
    """Like ``advance`` but an illegal move raises (for callers that must not see one)."""
    if not can_move(current, new):
        raise IllegalTransition(current, new)
    return new
