"""Accepting messages: validated requests → committed rows → queue entries.

A request is answered only after its rows are committed (invariant 1). Rows from all
concurrent requests go through one ``Batcher`` (group commit). After the commit the
immediate messages are XADDed to their priority stream and marked ``in_queue``; if
the process dies in between, the sweeper enqueues them once ``due_at`` has passed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import aiopg

from gateway.adapters import message_store
from gateway.adapters.batching import Batcher, QueueFull
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.errors import Overloaded
from gateway.core.ids import IdGenerator
from gateway.core.message import Accepted, NewMessage
from gateway.settings import DispatchSettings, StoreSettings

log = logging.getLogger("gateway.submit")


@dataclass(frozen=True, slots=True)
class _Stored:
    id: int
    duplicate: bool


class SubmitService:
    def __init__(
        self,
        pool: aiopg.Pool,
        queue: RedisQueue,
        ids: IdGenerator,
        store: StoreSettings,
        dispatch: DispatchSettings,
    ) -> None:
        self._pool = pool
        self._queue = queue
        self._ids = ids
        self._grace_s = dispatch.enqueue_grace_s
        self.writer: Batcher[tuple[int, NewMessage], _Stored] = Batcher(
            "accept",
            self._insert,
            store.batch_rows,
            store.batch_wait_ms / 1000,
            store.pending_limit,
        )
        self.enqueuer: Batcher[tuple[int, NewMessage], None] = Batcher(
            "enqueue", self._enqueue, 2000, 0.002, store.pending_limit * 2
        )

    async def accept(self, messages: Sequence[NewMessage]) -> list[Accepted]:
        """Commit the messages; returns once they are durable. Raises Overloaded if full."""
        if not self.writer.has_room(len(messages)):  # all or nothing: no 503 for a half
            raise Overloaded("the gateway is at capacity, retry shortly", 1.0)
        rows = [(self._ids.next(), m) for m in messages]
        futures = [self.writer.offer(row) for row in rows]
        results = await asyncio.gather(*futures, return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:  # most likely not committed; client_ref makes a retry safe
            log.warning("accept failed: %r", failure)
            raise Overloaded("the database is unavailable, retry shortly", 2.0)
        stored = [r for r in results if isinstance(r, _Stored)]
        return [Accepted(s.id, m, s.duplicate) for (_, m), s in zip(rows, stored, strict=True)]

    async def _insert(self, rows: Sequence[tuple[int, NewMessage]]) -> list[_Stored]:
        mapping = await message_store.insert(self._pool, rows, self._grace_s)
        result = [_Stored(mapping[mid], mapping[mid] != mid) for mid, _ in rows]
        for (mid, message), stored in zip(rows, result, strict=True):
            if not stored.duplicate and message.send_at is None:
                self._fire_enqueue((mid, message))
        return result

    def _fire_enqueue(self, row: tuple[int, NewMessage]) -> None:
        try:
            self.enqueuer.offer(row).add_done_callback(_ignore)
        except QueueFull:  # the sweeper enqueues it after the grace period
            log.warning("enqueue buffer full; message %d left to the sweeper", row[0])

    async def _enqueue(self, rows: Sequence[tuple[int, NewMessage]]) -> list[None]:
        await self._queue.enqueue((mid, m.priority) for mid, m in rows)
        await message_store.mark_queued(self._pool, [mid for mid, _ in rows])
        return [None] * len(rows)


def _ignore(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: the sweeper covers a failed enqueue
