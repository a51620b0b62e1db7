"""What the sweeper does with a message it visits (pure logic; gateway/services/sweeper.py).

Each message carries ``sweep_at``: when the sweeper must next look at it. The sweeper walks
the messages in order of ``sweep_at`` from a cursor, and for each one not final decides:

- waiting, out of the queue, due (a retry whose delay passed, a lease that expired, a
  scheduled send whose time came, an API process that died between commit and XADD):
  enqueue it;
- submitted, its receipt overdue (``receipt_timeout_s`` after submission, or
  ``receipt_grace_s`` after its own validity): end it as expired;
- waiting for something with a time (a live lease, a later retry, a receipt not yet
  overdue): visit it again then;
- in the queue: nothing. Its claim moves ``sweep_at`` on if the sweeper has passed it, and
  a queue lost with Redis is rebuilt from ``in_queue`` (``forget_queue``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.lifecycle import State
from gateway.core.message import Priority


class Action(enum.Enum):
    ENQUEUE = "enqueue"
    EXPIRE = "expire"
    LATER = "later"
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Visit:
    """A message as the sweeper read it; ``now`` is the database's clock."""

    message_id: int
    state: State
    in_queue: bool
    priority: Priority
    due_at: datetime
    submitted_at: datetime | None
    expires_at: datetime | None


def receipt_deadline(
    submitted_at: datetime, expires_at: datetime | None, timeout_s: float, grace_s: float
) -> datetime:
    """When a submitted message stops waiting for its receipt."""
    deadline = submitted_at + timedelta(seconds=timeout_s)
    if expires_at is not None:
        deadline = min(deadline, expires_at + timedelta(seconds=grace_s))
    return deadline


def decide(visit: Visit, now: datetime, timeout_s: float, grace_s: float) -> Action:
    if visit.state.is_final:
        return Action.NOTHING
    if visit.state is State.SUBMITTED:
        submitted = visit.submitted_at or now
        deadline = receipt_deadline(submitted, visit.expires_at, timeout_s, grace_s)
        return Action.EXPIRE if deadline <= now else Action.LATER
    if visit.in_queue:
        return Action.NOTHING
    return Action.ENQUEUE if visit.due_at <= now else Action.LATER
