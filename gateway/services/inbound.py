"""Inbound messages from every provider → one batched writer (see adapters/inbound_store.py).

Providers call ``sink`` on their receive loop; it only reads the part's concatenation info
and queues it, never waits. The future it returns resolves once the part is committed: the
provider acknowledges the deliver_sm only then, so a crash before that loses nothing (the
SMSC delivers the part again). In one transaction per batch the parts are stored and
joined, the whole messages are stored, the opt-out list is updated and each forward is put
in the webhook outbox (the ``WebhookService`` signs and retries it like any status
callback). After the commit the batch's messages are published on the inbound stream,
best effort: the record is in PostgreSQL.

``run`` also expires parts whose siblings never came: after ``part_ttl_s`` what arrived is
stored and forwarded as an incomplete message (``complete: false``), never dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiopg
import redis.asyncio as aioredis

from gateway.adapters import inbound_store
from gateway.adapters.batching import Batcher, QueueFull
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.inbound_store import NewInbound
from gateway.core.inbound import (
    InboundSettings,
    Joined,
    OptAction,
    Piece,
    Rules,
    decide,
    forward_payload,
    join,
    opt_changes,
    piece_of,
)
from gateway.core.masking import mask_phone
from providers.base import Ack, InboundPart

log = logging.getLogger("gateway.inbound")

T = TypeVar("T")


def inbound_stream(prefix: str) -> str:
    """The stream key (own hash tag: it may live on another Redis Cluster shard)."""
    return f"{prefix}:{{in}}:events"


@dataclass(frozen=True, slots=True)
class Arrival:
    id: int  # the message id if this part is a whole message (fixed before a retried flush)
    piece: Piece


class InboundService:
    def __init__(
        self,
        settings: InboundSettings,
        pool: aiopg.Pool,
        redis: aioredis.Redis,
        next_id: Callable[[], int],
        region: str,
        stream: str,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._redis = redis
        self._next_id = next_id
        self._region = region
        self._stream = stream
        self._rules = Rules.of(settings, region)
        self.writer: Batcher[Arrival, None] = Batcher(
            "inbound",
            self._apply,
            settings.batch_rows,
            0.005,
            settings.queue_limit,
            retry_for=120.0,
        )
        self.received = self.refused = self.stored = self.expired = 0
        self.opted_out = self.opted_in = self.forwarded = 0

    def sink(self, part: InboundPart) -> Ack:
        """The providers' callback: returns at once, with a future that resolves when the
        part is committed (the provider acknowledges it to the SMSC only then)."""
        self.received += 1
        arrival = Arrival(self._next_id(), piece_of(part, self._region, datetime.now(UTC)))
        try:
            future = self.writer.offer(arrival)
        except QueueFull:
            self.refused += 1  # refused, not lost: the SMSC is told to deliver it again
            future = asyncio.get_running_loop().create_future()
            future.set_exception(QueueFull("inbound"))
        future.add_done_callback(_report)
        return future

    async def run(self) -> None:
        """The writer and the expiry of parts that wait too long; runs until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.writer.run(), name="inbound-writer")
            tasks.create_task(self._expire_loop(), name="inbound-expiry")

    async def _apply(self, batch: Sequence[Arrival]) -> list[None]:
        items = await _finishing(self._store(batch))
        await self._publish(items)
        return [None] * len(batch)

    async def _store(self, batch: Sequence[Arrival]) -> list[NewInbound]:
        singles = [(a.id, join([a.piece])) for a in batch if a.piece.total == 1]
        async with self._pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            groups = await inbound_store.add_parts(
                cur, [a.piece for a in batch if a.piece.total > 1]
            )
            return await self._record(cur, singles + [(self._next_id(), join(g)) for g in groups])

    async def _record(self, cur: Any, joined: Sequence[tuple[int, Joined]]) -> list[NewInbound]:
        """Store, schedule forwards and apply opt-outs, in the caller's transaction."""
        now = datetime.now(UTC)
        decided = decide([m for _, m in joined], self._rules)
        items = [
            NewInbound(i, d, json.dumps(forward_payload(i, d, now), ensure_ascii=False))
            for (i, _), d in zip(joined, decided, strict=True)
        ]
        forwards = await inbound_store.record(cur, items)
        changes = opt_changes(items, lambda item: item.decided)
        await inbound_store.apply_opt_changes(cur, changes)
        self._count(items, changes, forwards)
        return items

    def _count(
        self, items: Sequence[NewInbound], changes: Sequence[NewInbound], forwards: int
    ) -> None:
        self.stored += len(items)
        self.forwarded += forwards
        for change in changes:
            opt_out = change.decided.action is OptAction.OPT_OUT
            self.opted_out += opt_out
            self.opted_in += not opt_out
            log.info(
                "inbound %d: %s %s",
                change.id,
                mask_phone(change.decided.message.source),
                "opted out" if opt_out else "opted in",
            )
        unsent = sum(1 for i in items if i.decided.rule) - forwards
        if unsent > 0:  # a rule naming no known client; or a retried batch (already sent)
            log.warning("%d inbound messages matched a rule whose client is unknown", unsent)

    async def _publish(self, items: Sequence[NewInbound]) -> None:
        if not items:
            return
        entry = {"v": "1", "messages": "[" + ",".join(i.payload for i in items) + "]"}
        try:
            await self._redis.xadd(
                self._stream,
                entry,  # type: ignore[arg-type]
                maxlen=self._settings.stream_maxlen,
                approximate=True,
            )
        except Exception as exc:  # Redis down must not fail a committed batch
            raise_if_cancelling()
            log.warning("could not publish %d inbound messages: %r", len(items), exc)

    async def _expire_loop(self) -> None:
        interval = min(max(self._settings.part_ttl_s / 4, 0.05), 30.0)
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            try:
                done = await self.expire()
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("could not expire inbound parts: %r", exc)
                done = 0
            if done < self._settings.batch_rows:
                await asyncio.sleep(interval)

    async def expire(self) -> int:
        """Store as incomplete the messages whose parts waited over the TTL; returns how many."""
        items = await _finishing(self._expire())
        self.expired += len(items)
        await self._publish(items)
        return len(items)

    async def _expire(self) -> list[NewInbound]:
        ttl, limit = self._settings.part_ttl_s, self._settings.batch_rows
        async with self._pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            groups = await inbound_store.expire_parts(cur, ttl, limit)
            return await self._record(cur, [(self._next_id(), join(g)) for g in groups])


async def _finishing(transaction: Coroutine[Any, Any, T]) -> T:
    """Run a transaction to its end even if the caller is cancelled: aiopg cancelled in the
    middle of one can leave its connection stranded and the transaction unclosed."""
    task = asyncio.ensure_future(transaction)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])  # a short wait: one statement batch
        if not task.cancelled():
            task.exception()  # retrieved: the caller is going away anyway
        raise


def _report(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning(
            "an inbound part was not stored (%r); its SMSC will send it again", future.exception()
        )
