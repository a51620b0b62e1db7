"""The sweeper: PostgreSQL is the record, the Redis queue is rebuilt from it.

Every interval it (1) checks the queue's epoch key: if Redis lost its data, exactly one
process marks every queued message as out of the queue; (2) walks the messages whose
``sweep_at`` came, in order, from a cursor kept in PostgreSQL (``sweep_cursor``), and does
for each what ``gateway.core.sweeping.decide`` says: enqueues the due ones (scheduled
sends whose time came, retries whose delay passed, leases of dead dispatchers that
expired, messages whose API process died between commit and XADD), ends as ``expired``
(``no_receipt``) the submitted ones whose receipt is overdue (an SMSC that loses a receipt
must not leave a message ``submitted`` for good; a receipt arriving later changes
nothing), and sets a later ``sweep_at`` on those waiting for a time.

Why a walk and not a query of what is due: an index that names ``state`` or ``in_queue``
would make every update of a message non-HOT (migration 0009). The walk reads each message
once, about ``enqueue_grace_s`` after its accept, when most are final already.

Why it is safe: the cursor moves only after the messages before it were handled, and never
past the start of the oldest open transaction of a gateway connection; every statement
that may leave a message needing a visit sets ``sweep_at`` to its own now() or later
(gateway/adapters/message_store.py). Two sweepers at once do some things twice, which is
harmless: an entry added twice is claimed once, and states only move forward.
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
from gateway.core.sweeping import Action, Visit, decide
from gateway.metrics import families
from gateway.services.events import EventPublisher
from gateway.settings import DispatchSettings

log = logging.getLogger("gateway.sweeper")

NO_RECEIPT = "no_receipt"
BATCH = 5000  # messages read per statement
MAX_BATCHES = 100


class Sweeper:
    def __init__(
        self,
        settings: DispatchSettings,
        pool: aiopg.Pool,
        queue: RedisQueue,
        events: EventPublisher,
        margin_s: float = 1.0,  # see message_store.SWEEP_HORIZON_SQL
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._queue = queue
        self._events = events
        self._margin_s = margin_s
        self.enqueued = 0
        self.rebuilds = 0
        self.expired = 0
        self._last_cleanup = 0.0

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
        before, blind = await store.sweep_horizon(self._pool, self._margin_s)
        if blind:
            log.warning("some gateway connections hide their transactions (another role?):"
                        " the sweep keeps a minute behind")  # fmt: skip
        cursor = await store.sweep_cursor(self._pool)
        total = 0
        for _ in range(MAX_BATCHES):  # bounded: a sweep never runs away
            batch = await store.read_sweep(self._pool, cursor, before, BATCH)
            total += await self._visit(batch)
            if batch.last is None or batch.read < BATCH:  # all before the horizon is seen
                await store.advance_sweep_cursor(self._pool, (before, 0))
                break
            cursor = batch.last
            await store.advance_sweep_cursor(self._pool, cursor)
        families.SWEEPER_REQUEUED.inc("due", by=total)
        return total

    async def _visit(self, batch: store.SweepBatch) -> int:
        """Act on one batch; returns how many messages it enqueued."""
        if batch.now is None or not batch.visits:
            return 0
        settings = self._settings
        todo: dict[Action, list[Visit]] = {action: [] for action in Action}
        for visit in batch.visits:
            action = decide(visit, batch.now, settings.receipt_timeout_s, settings.receipt_grace_s)
            todo[action].append(visit)
        due = [(v.message_id, v.priority) for v in todo[Action.ENQUEUE]]
        if due:
            await store.enqueue(self._queue, self._pool, due)
            log.info("enqueued %d due messages", len(due))
            self.enqueued += len(due)
        await self._expire([v.message_id for v in todo[Action.EXPIRE]])
        later = [v.message_id for v in todo[Action.LATER]]
        if later:
            await store.sweep_later(
                self._pool, later, settings.receipt_timeout_s, settings.receipt_grace_s
            )
        return len(due)

    async def _forget_old_receipts(self) -> None:
        """Receipts that never found their part (garbage ids, duplicates) go after a day."""
        now = time.monotonic()
        if now - self._last_cleanup > 60:
            self._last_cleanup = now
            await store.forget_early_receipts(self._pool, 24 * 3600)

    async def _expire(self, ids: list[int]) -> None:
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
