"""Which campaign gets a conversion or a reply. Pure.

A contact's *touches* are the campaign messages sent to it. An outcome (a conversion the
company's systems report, a reply the contact sends) goes to the last touch sent at or
before it, no longer ago than the window: last-touch attribution. A touch counts only once
it reached a provider (``submitted``) and did not fail there; for a reply a message whose
receipt never came (``expired``) still counts, since the contact evidently has the number.
Ties in time go to the higher message id (the later one accepted).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

CONVERSION_STATES = frozenset({"submitted", "delivered"})
REPLY_STATES = CONVERSION_STATES | {"expired"}


@dataclass(frozen=True, slots=True)
class Touch:
    """A campaign message sent to a contact."""

    contact_id: int
    campaign_id: int
    message_id: int
    variant: str | None
    status: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """Something a contact did (a conversion, a reply) at a moment."""

    contact_id: int
    at: datetime


def attribute(
    outcome: Outcome, touches: Iterable[Touch], window: timedelta, states: Set[str]
) -> Touch | None:
    """The touch that gets the outcome, or None when no campaign earned it."""
    earliest = outcome.at - window
    eligible = [
        t
        for t in touches
        if t.contact_id == outcome.contact_id
        and t.status in states
        and earliest <= t.sent_at <= outcome.at
    ]
    return max(eligible, key=_recency, default=None)


def attribute_all(
    outcomes: Iterable[Outcome], touches: Iterable[Touch], window: timedelta, states: Set[str]
) -> list[Touch | None]:
    """``attribute`` for a batch, grouping the touches by contact once."""
    by_contact: dict[int, list[Touch]] = {}
    for touch in touches:
        by_contact.setdefault(touch.contact_id, []).append(touch)
    return [attribute(o, by_contact.get(o.contact_id, ()), window, states) for o in outcomes]


def _recency(touch: Touch) -> tuple[datetime, int]:
    return touch.sent_at, touch.message_id
