"""The gateway's events stream, read by the admin: parsing, folding, waiting rows. Pure.

An entry holds a JSON list of state changes (gateway/services/events.py). ``fold`` turns a
batch into one change per message, the lifecycle-furthest (gateway/core/lifecycle.py):
a batch can hold a message's ``submitted`` and its ``delivered``, in either order, and
the stored row must end at ``delivered`` with both times.

A status can arrive before the campaign runner has committed the message's row (the
gateway answered, the runner's transaction is still open). Such events wait in ``Parked``
and are tried again after growing delays, then dropped; once the admin has seen which
gateway clients its campaigns send as, events of other clients are dropped at once, so
the gateway's other traffic costs one set lookup.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.core.lifecycle import State

RETRY_DELAYS = (1.0, 5.0, 30.0)
MAX_PRICE = Decimal("1e8")  # numeric(14, 6)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    message_id: int
    client_id: int
    state: State
    at: datetime
    provider: str | None = None
    error_code: str | None = None
    price: Decimal | None = None
    parts: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """What one batch says about one message."""

    message_id: int
    state: State
    submitted_at: datetime | None
    delivered_at: datetime | None
    final_at: datetime | None
    provider: str | None
    error_code: str | None
    price: Decimal | None
    parts: int | None


def parse_entry(fields: Mapping[Any, Any]) -> tuple[list[StatusEvent], int]:
    """The events of one stream entry and how many of them were unreadable (skipped)."""
    raw = _text(fields.get(b"events", fields.get("events")))
    try:
        items = json.loads(raw) if raw is not None else None
    except ValueError:
        items = None
    if not isinstance(items, list):
        return [], 1
    events = [e for e in map(_event, items) if e is not None]
    return events, len(items) - len(events)


def _event(item: Any) -> StatusEvent | None:
    try:
        event = StatusEvent(
            message_id=int(item["id"]),
            client_id=int(item["client_id"]),
            state=State.from_label(item["status"]),
            at=datetime.fromisoformat(item["at"]),
            provider=item.get("provider"),
            error_code=item.get("error_code"),
            price=Decimal(item["price"]) if item.get("price") is not None else None,
            parts=int(item["parts"]) if item.get("parts") is not None else None,
        )
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return None
    return event if _fits(event) else None


def _fits(event: StatusEvent) -> bool:
    """Within what ``admin.campaign_messages`` holds (a value it refused would stall the
    whole batch)."""
    return (
        0 < event.message_id < 2**63
        and (event.price is None or (event.price.is_finite() and 0 <= event.price < MAX_PRICE))
        and (event.parts is None or 0 < event.parts < 2**31)
        and event.at.tzinfo is not None
    )


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def fold(events: Iterable[StatusEvent]) -> list[Change]:
    """One change per message (sorted by id: the store locks rows in that order)."""
    by_id: dict[int, list[StatusEvent]] = {}
    for event in events:
        by_id.setdefault(event.message_id, []).append(event)
    return [_fold_one(by_id[i]) for i in sorted(by_id)]


def _fold_one(events: Sequence[StatusEvent]) -> Change:
    # max() keeps the first of equals: of two final states (which the gateway never
    # sends for one message) the first in stream order stands, as it would in the table.
    last = max(events, key=lambda e: e.state.rank)
    submitted = [e for e in events if e.state is State.SUBMITTED]
    return Change(
        message_id=last.message_id,
        state=last.state,
        submitted_at=min((e.at for e in submitted), default=None),
        delivered_at=last.at if last.state is State.DELIVERED else None,
        final_at=last.at if last.state.is_final else None,
        provider=next((e.provider for e in events if e.provider), None),
        error_code=last.error_code if last.state.is_final else None,
        price=next((e.price for e in events if e.price is not None), None),
        parts=next((e.parts for e in events if e.parts is not None), None),
    )


class Parked:
    """Events whose message row was not there yet, waiting to be tried again.

    One FIFO per attempt: entries join in time order, so each queue's head is its next
    due. Bounded: past ``limit`` the oldest are dropped (counted in ``dropped``)."""

    def __init__(self, delays: Sequence[float] = RETRY_DELAYS, limit: int = 100_000) -> None:
        self._delays = tuple(delays)
        self._queues: list[deque[tuple[float, StatusEvent]]] = [deque() for _ in self._delays]
        self._limit = limit
        self.ours: set[int] = set()  # gateway clients whose messages are campaign messages
        self.dropped = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues)

    def learn(self, client_ids: Iterable[int]) -> None:
        self.ours.update(client_ids)

    def park(self, events: Iterable[StatusEvent], now: float, attempt: int = 0) -> None:
        """Hold unmatched events for another try (or drop those that are not ours)."""
        if attempt >= len(self._delays):
            return
        queue = self._queues[attempt]
        for event in events:
            if not self.ours or event.client_id in self.ours:
                queue.append((now + self._delays[attempt], event))
        while len(self) > self._limit:
            self._drop_oldest()

    def due(self, now: float) -> list[tuple[int, list[StatusEvent]]]:
        """Pop what is due, as (attempt, events) for each attempt that has some."""
        found = []
        for attempt, queue in enumerate(self._queues):
            ready = []
            while queue and queue[0][0] <= now:
                ready.append(queue.popleft()[1])
            if ready:
                found.append((attempt, ready))
        return found

    def _drop_oldest(self) -> None:
        queue = max(self._queues, key=len)
        queue.popleft()
        self.dropped += 1
