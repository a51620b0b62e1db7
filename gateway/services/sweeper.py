"""The sweeper: PostgreSQL is the record, the Redis queue is rebuilt from it.

Every interval it (1) checks the queue's epoch key: if Redis lost its data, exactly one
process marks every queued message as out of the queue; (2) enqueues the messages that
are due and not in the queue: scheduled ones whose ``send_at`` came, retries whose
delay passed, leases of dead dispatchers that expired, and messages whose API process
died between commit and XADD. Entries it adds twice are harmless: the claim lets one
through. (3) Every few seconds, it ends as ``expired`` (``no_receipt``) the submitted
messages whose receipt is overdue: an SMSC that loses a receipt must not leave a message
``submitted`` for good. A receipt arriving later changes nothing (never backwards).
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiopg

from gateway.adapters import message_store as store
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.lifecycle import State
from gateway.metrics import families
from gateway.services.events import EventPublisher
from gateway.settings import DispatchSettings

log = logging.getLogger("gateway.sweeper")

NO_RECEIPT = "no_receipt"
DEADLINE_EVERY_S = 5.0


class Sweeper:
    def __init__(
        self,
        settings: DispatchSettings,
        pool: aiopg.Pool,
        queue: RedisQueue,
        events: EventPublisher,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._queue = queue
        self._events = events
        self.enqueued = 0
        self.rebuilds = 0
        self.expired = 0
        self._last_cleanup = 0.0
        self._last_deadline = 0.0

    async def run(self) -> None:
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            try:
                await self.sweep()
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("sweep failed: %r", exc)
            await asyncio.sleep(self._settings.sweep_interval_s)

    async def sweep(self) -> int:
        await self._check_epoch()
        await self._forget_old_receipts()
        await self._expire_overdue()
        total = 0
        for _ in range(100):  # bounded: a sweep never runs away
            due = await store.due(self._pool, 5000)
            if due:
                await store.enqueue(self._queue, self._pool, due)
            total += len(due)
            if len(due) < 5000:
                break
        if total:
            log.info("enqueued %d due messages", total)
        families.SWEEPER_REQUEUED.inc("due", by=total)
        self.enqueued += total
        return total

    async def _forget_old_receipts(self) -> None:
        """Receipts that never found their part (garbage ids, duplicates) go after a day."""
        now = time.monotonic()
        if now - self._last_cleanup > 60:
            self._last_cleanup = now
            await store.forget_early_receipts(self._pool, 24 * 3600)

    async def _expire_overdue(self) -> None:
        now = time.monotonic()
        if now - self._last_deadline < DEADLINE_EVERY_S:
            return
        self._last_deadline = now
        for _ in range(20):  # bounded: the rest waits for the next round
            ids = await store.overdue(
                self._pool,
                self._settings.receipt_timeout_s,
                self._settings.receipt_grace_s,
                1000,
            )
            if not ids:
                return
            updates = [store.FinalUpdate(mid, State.EXPIRED, NO_RECEIPT) for mid in ids]
            async with self._pool.acquire() as conn, conn.cursor() as cur, cur.begin():
                events = await store.record_final(cur, updates)
            await self._events.publish(events)
            self.expired += len(events)
            log.info("%d messages expired without a receipt", len(events))

    async def _check_epoch(self) -> None:
        if await self._queue.epoch_present():
            return
        await self._queue.ensure_groups()
        if await self._queue.claim_rebuild():
            count = await store.forget_queue(self._pool)
            self.rebuilds += 1
            families.SWEEPER_REQUEUED.inc("queue_lost", by=count)
            log.warning("queue epoch missing: rebuilding %d queued messages from PostgreSQL", count)
