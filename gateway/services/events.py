"""Committed state changes, published on the events stream for the modules.

One stream entry per committed batch (``v`` = format version, ``events`` = a JSON list of
``{id, client_id, status, at, provider?, error_code?}``): one XADD per batch, not per
message."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from gateway.adapters.message_store import StatusEvent
from gateway.adapters.redis_queue import RedisQueue

log = logging.getLogger("gateway.events")


class EventPublisher:
    def __init__(self, queue: RedisQueue, maxlen: int) -> None:
        self._queue = queue
        self._maxlen = maxlen

    async def publish(self, events: Sequence[StatusEvent]) -> None:
        """Best effort: the record is already in PostgreSQL; a lost event is not a lost state."""
        if not events:
            return
        entry = {"v": "1", "events": json.dumps([_fields(e) for e in events])}
        try:
            await self._queue.publish([entry], self._maxlen)
        except Exception as exc:  # Redis down must not fail a committed batch
            log.warning("could not publish %d events: %r", len(events), exc)


def _fields(event: StatusEvent) -> dict[str, str]:
    fields = {
        "id": str(event.message_id),
        "client_id": str(event.client_id),
        "status": event.state.label,
        "at": event.at.isoformat(),
    }
    if event.provider:
        fields["provider"] = event.provider
    if event.error_code:
        fields["error_code"] = event.error_code
    return fields
