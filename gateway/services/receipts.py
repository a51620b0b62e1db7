"""Receipts from every provider → one batched writer (see adapters/receipt_store.py).

Providers call ``sink`` on their receive loop; it only converts and queues, never
waits. A receipt is applied within one batch interval; the receipts that arrive before
their submit response wait in PostgreSQL (``early_receipts``), so they survive a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiopg

from gateway.adapters.batching import Batcher, QueueFull
from gateway.adapters.receipt_store import ReceiptIn, apply_receipts
from gateway.core.lifecycle import State
from gateway.core.receipts import AUTO, IdForms, receipt_keys, receipt_state
from gateway.metrics import families
from gateway.services.events import EventPublisher
from gateway.services.webhook_handoff import Handoff
from providers.base import Ack, Receipt

log = logging.getLogger("gateway.receipts")


class ReceiptService:
    def __init__(
        self,
        pool: aiopg.Pool,
        events: EventPublisher,
        id_forms: Mapping[str, IdForms],
        batch_rows: int,
        limit: int = 200_000,
    ) -> None:
        self._pool = pool
        self._events = events
        self._id_forms = id_forms
        self.writer: Batcher[ReceiptIn, None] = Batcher(
            "receipts", self._apply, batch_rows, 0.005, limit, retry_for=120.0
        )
        # Told of every final receipt (the router's breakers watch the delivered ratio).
        self.observers: list[Callable[[Receipt], None]] = []
        self.hooks: Handoff | None = None  # this process's webhook sender, if any
        self.received = 0
        self.intermediate = 0
        self.refused = 0
        self.early = 0

    def sink(self, receipt: Receipt) -> Ack | None:
        """The providers' callback: returns at once, with a future that resolves when the
        receipt is committed (the provider acknowledges it to the SMSC only then)."""
        self.received += 1
        state = receipt_state(receipt.status)
        if state is None:
            self.intermediate += 1
            families.RECEIPTS.inc("intermediate")
            return None
        for observe in self.observers:
            observe(receipt)
        forms = self._id_forms.get(receipt.provider, AUTO)
        item = ReceiptIn(
            receipt.provider,
            receipt.provider_message_id,
            receipt_keys(receipt.provider_message_id, forms),
            state,
            receipt.error_code,
            receipt.done_at,
        )
        return self.offer(item)

    def offer(self, item: ReceiptIn) -> Ack:
        """Its future fails with the batch that could not store it (the batcher logs that,
        once a batch); the provider then asks its SMSC to deliver it again."""
        try:
            return self.writer.offer(item)
        except QueueFull as exc:
            self.refused += 1  # refused, not lost: the SMSC is told to deliver it again
            families.RECEIPTS.inc("refused")
            log.warning("a receipt was not stored (%r); its SMSC will send it again", exc)
            future: Ack = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
            return future

    async def _apply(self, batch: Sequence[ReceiptIn]) -> list[None]:
        hold = self.hooks.hold_s() if self.hooks else 0.0
        async with self._pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            outcome = await apply_receipts(cur, batch, hold)
        if self.hooks:
            self.hooks.hand(outcome.events, hold)
        self.early += outcome.early
        families.RECEIPTS.inc("matched", by=outcome.matched)
        families.RECEIPTS.inc("early", by=outcome.early)
        await self._events.publish(outcome.events)
        return [None] * len(batch)


def early_receipts(
    rows: Sequence[tuple[Any, ...]], id_forms: Mapping[str, IdForms]
) -> list[ReceiptIn]:
    """Rows taken from ``early_receipts`` as receipts to apply again."""
    return [
        ReceiptIn(
            provider,
            pid,
            receipt_keys(pid, id_forms.get(provider, AUTO)),
            State(status),
            error,
            done_at,
        )
        for provider, pid, status, error, done_at in rows
    ]
