"""What happened to each submission, recorded in one transaction per batch, then acked.

The queue entry of a message is acknowledged only after its outcome (submitted, retry
later, or final) is committed: a crash before that leaves the entry pending, and
another dispatcher reclaims it (invariant 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import aiopg

from gateway.adapters import message_store as store
from gateway.adapters.batching import Batcher
from gateway.adapters.failures import raise_if_cancelling
from gateway.adapters.receipt_store import apply_receipts
from gateway.adapters.redis_queue import Entry, RedisQueue
from gateway.core.message import Priority
from gateway.core.receipts import AUTO, IdForms, early_keys
from gateway.metrics import families
from gateway.services.events import EventPublisher
from gateway.services.receipts import early_receipts
from gateway.services.webhook_handoff import Handoff

log = logging.getLogger("gateway.dispatch")
EXPRESS_ROWS = 100

Outcome = store.Submitted | store.Retry | store.FinalUpdate | None  # None: only ack


class Done(NamedTuple):  # a tuple: one is built for every message
    entries: tuple[Entry, ...]
    outcome: Outcome


class OutcomeWriter:
    def __init__(
        self,
        pool: aiopg.Pool,
        queue: RedisQueue,
        events: EventPublisher,
        id_forms: Mapping[str, IdForms],
        batch_rows: int,
        hooks: Handoff | None = None,
    ) -> None:
        self._pool = pool
        self._queue = queue
        self._events = events
        self._id_forms = id_forms
        self._hooks = hooks  # this process's webhook sender, if it runs one
        self.writer: Batcher[Done, None] = Batcher(
            "outcomes", self._flush, batch_rows, 0.004, 100_000, retry_for=120.0
        )
        # OTPs commit in their own small groups, beside the bulk's: behind a flush of
        # 500 bulk outcomes an OTP waited for it and for its own turn (p99 626 ms from
        # accept to submitted under a bulk load). The two lock disjoint message rows
        # first, each in id order, then shared locks in sorted order: no cycle.
        self.express: Batcher[Done, None] = Batcher(
            "outcomes-otp", self._flush, EXPRESS_ROWS, 0.001, 10_000, retry_for=120.0
        )

    @property
    def writers(self) -> tuple[Batcher[Done, None], ...]:
        return (self.writer, self.express)

    async def run(self) -> None:
        await asyncio.gather(self.writer.run(), self.express.run())

    async def record(self, done: Done) -> None:
        """Queue an outcome and wait for its commit. A sender takes its next message only
        once this one's outcome is durable, so a crash resends at most the senders'
        in-flight work (invariant 3), never a backlog of outcomes not yet committed."""
        otp = bool(done.entries) and done.entries[0].priority is Priority.OTP
        # A failed batch is logged once by the batcher, not once per sender; its entries
        # stay pending and another dispatcher reclaims them.
        with contextlib.suppress(Exception):
            await (self.express if otp else self.writer).call(done)

    async def _flush(self, batch: Sequence[Done]) -> list[None]:
        submitted = [d.outcome for d in batch if isinstance(d.outcome, store.Submitted)]
        retries = [d.outcome for d in batch if isinstance(d.outcome, store.Retry)]
        finals = [d.outcome for d in batch if isinstance(d.outcome, store.FinalUpdate)]
        events: list[store.StatusEvent] = []
        hold = self._hooks.hold_s() if self._hooks else 0.0
        async with self._pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            if submitted:
                events = await self._record_submitted(cur, submitted, hold)
            if retries:
                await store.schedule_retries(cur, retries)
            if finals:
                events += await store.record_final(cur, finals, hold)
        if self._hooks:
            self._hooks.hand(events, hold)
        await self._ack([e for d in batch for e in d.entries])
        await self._events.publish(events)
        _count_cost(submitted)
        return [None] * len(batch)

    async def _record_submitted(
        self, cur: Any, submitted: list[store.Submitted], hold_hooks_s: float
    ) -> list[store.StatusEvent]:
        """Record the parts and, in the same transaction, the receipts that overtook them:
        a crash can then lose neither."""
        events, early = await store.record_submitted(cur, submitted, self._early(submitted))
        if early:
            receipts = early_receipts(early, self._id_forms)
            outcome = await apply_receipts(cur, receipts, hold_hooks_s)
            events += outcome.events
        return events

    async def _ack(self, entries: list[Entry]) -> None:
        try:
            await self._queue.ack(entries)
        except Exception as exc:  # pending entries are reclaimed later and found done
            raise_if_cancelling()
            log.warning("could not ack %d entries: %r", len(entries), exc)

    def _early(self, submitted: Sequence[store.Submitted]) -> list[tuple[str, str]]:
        return [
            (s.provider, key)
            for s in submitted
            for pid in s.part_ids
            for key in early_keys(pid, self._id_forms.get(s.provider, AUTO))
        ]


def _count_cost(submitted: Sequence[store.Submitted]) -> None:
    cost: dict[str, Decimal] = {}
    for s in submitted:
        cost[s.provider] = cost.get(s.provider, Decimal(0)) + s.price
    for provider, amount in cost.items():
        families.COST.inc(provider, by=float(amount))
