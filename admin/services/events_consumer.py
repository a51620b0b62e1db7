"""The admin's reader of the gateway's streams: statuses → campaign messages, inbound →
replies.

Theory of operation. Each stream is read by the consumer group ``admin`` (created at the
stream's start, so nothing published before the admin first ran is missed), one batch at
a time: parse, apply in one statement, then XACK. A batch that fails on a store error is
retried until it goes through; it is acknowledged only after, so a crash between the two
replays it, and replaying is harmless (statuses are monotonic, replies keyed by the
gateway's inbound id). Entries a dead consumer read and never acknowledged are taken
over with XAUTOCLAIM once idle for ``idle_ms``. Entries are not deleted: the stream is
the gateway's, trimmed by its MAXLEN, and other modules may read it too. Redis down or
emptied (the group gone) is waited out: the group is made again and reading goes on;
what Redis lost with it is lost to the admin too (the gateway's record is PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiopg
import psycopg2
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from admin.adapters import attribution_store, status_store
from admin.adapters.attribution_store import ReplyRow
from admin.core.attribution import REPLY_STATES, Outcome, attribute_all
from admin.core.replies import Reply, parse_inbound_entry
from admin.core.status_events import Parked, StatusEvent, fold, parse_entry
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.redis_queue import RedisQueue
from gateway.services.inbound import inbound_stream
from providers.masking import mask_phone

if TYPE_CHECKING:
    from admin.app import Admin

log = logging.getLogger("admin.events")

GROUP = "admin"
StreamEntry = tuple[bytes, dict[bytes, bytes]]


async def run(admin: Admin) -> None:
    """Read both streams until cancelled."""
    queue = admin.gateway_settings.queue
    consumer = EventsConsumer(
        admin.pool,
        admin.redis,
        Streams(RedisQueue(admin.redis, queue.prefix, "").events_key, inbound_stream(queue.prefix)),
        timedelta(hours=admin.settings.conversion_window_h),
        f"{socket.gethostname()}-{os.getpid()}",
    )
    await consumer.run()


@dataclass(frozen=True, slots=True)
class Streams:
    events: str
    inbound: str


@dataclass(frozen=True, slots=True)
class Tuning:
    batch: int = 4  # stream entries per step; the gateway puts up to a few hundred events in one
    block_ms: int = 1000
    idle_ms: int = 60_000  # a consumer silent this long is taken for dead
    retry_s: float = 1.0  # after a store error


class StreamReader:
    """One consumer of one stream in the group: read, acknowledge, take over."""

    def __init__(self, redis: aioredis.Redis, stream: str, consumer: str) -> None:
        self.redis, self.stream, self.consumer = redis, stream, consumer
        self.next_reclaim = 0.0  # loop time of the next look for a dead consumer's entries

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int, block_ms: int) -> list[StreamEntry]:
        reply: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [(eid, fields) for _, items in reply or () for eid, fields in items]

    async def reclaim(self, idle_ms: int, count: int) -> list[StreamEntry]:
        """Pending entries idle over ``idle_ms`` (a dead consumer's, or our own from before
        a restart under the same name); trimmed-away ones come back with no fields."""
        reply = await self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, min_idle_time=idle_ms, start_id="0-0", count=count
        )
        return [(eid, fields or {}) for eid, fields in reply[1]]

    async def ack(self, entries: Sequence[StreamEntry]) -> None:
        if entries:
            await self.redis.xack(self.stream, GROUP, *[eid for eid, _ in entries])


class EventsConsumer:
    def __init__(
        self,
        pool: aiopg.Pool,
        redis: aioredis.Redis,
        streams: Streams,
        window: timedelta,
        consumer: str,
        tuning: Tuning | None = None,
    ) -> None:
        self._pool = pool
        self._window = window
        self.tuning = tuning or Tuning()
        self.events = StreamReader(redis, streams.events, consumer)
        self.inbound = StreamReader(redis, streams.inbound, consumer)
        self.parked = Parked()
        self.updated = self.unreadable = self.replies = self.unsubscribed = 0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._loop(self.events, self.apply_statuses), name="admin-statuses")
            tasks.create_task(self._loop(self.inbound, self.apply_replies), name="admin-replies")

    async def _loop(
        self, reader: StreamReader, handle: Callable[[Sequence[StreamEntry]], Awaitable[None]]
    ) -> None:
        while True:
            try:
                await reader.ensure_group()  # again after an error: Redis may have lost it
                while True:
                    await self.step(reader, handle, self.tuning.block_ms)
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("reading %s failed, retrying: %r", reader.stream, exc)
                await asyncio.sleep(self.tuning.retry_s)

    async def step(
        self,
        reader: StreamReader,
        handle: Callable[[Sequence[StreamEntry]], Awaitable[None]],
        block_ms: int,
    ) -> int:
        """One batch: what a dead consumer left, else new entries; handled, then acked.
        Returns how many entries."""
        entries = await self._reclaim(reader)
        if not entries:
            entries = await reader.read(self.tuning.batch, block_ms)
        await self._until_done(handle, entries)
        await reader.ack(entries)
        if reader is self.events:
            await self._until_done(self._retry_parked, ())
        return len(entries)

    async def _reclaim(self, reader: StreamReader) -> list[StreamEntry]:
        """A dead consumer's entries, looked for every half ``idle_ms`` (and again at once
        while a look finds a full batch)."""
        if _now() < reader.next_reclaim:
            return []
        entries = await reader.reclaim(self.tuning.idle_ms, self.tuning.batch)
        if len(entries) < self.tuning.batch:
            reader.next_reclaim = _now() + self.tuning.idle_ms / 2000
        return entries

    async def _until_done(
        self,
        handle: Callable[[Sequence[StreamEntry]], Awaitable[None]],
        entries: Sequence[StreamEntry],
    ) -> None:
        while True:
            try:
                return await handle(entries)
            except psycopg2.DataError as exc:  # a value the table refuses: retrying won't help
                log.error("dropped %d stream entries the store refused: %r", len(entries), exc)
                return None
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("could not apply %d stream entries, retrying: %r", len(entries), exc)
                await asyncio.sleep(self.tuning.retry_s)

    async def apply_statuses(self, entries: Sequence[StreamEntry]) -> None:
        events: list[StatusEvent] = []
        for _, fields in entries:
            found, bad = parse_entry(fields) if fields else ([], 0)
            events += found
            self.unreadable += bad
        unmatched = await self._apply_events(events)
        self.parked.park(unmatched, _now())

    async def _apply_events(self, events: Sequence[StatusEvent]) -> list[StatusEvent]:
        """Apply; returns the events whose message has no row (yet)."""
        if not events:
            return []
        matched, changed = await status_store.apply(self._pool, fold(events))
        self.updated += changed
        self.parked.learn({e.client_id for e in events if e.message_id in matched})
        return [e for e in events if e.message_id not in matched]

    async def _retry_parked(self, _: Sequence[StreamEntry]) -> None:
        for attempt, events in self.parked.due(_now()):
            self.parked.park(await self._apply_events(events), _now(), attempt + 1)

    async def apply_replies(self, entries: Sequence[StreamEntry]) -> None:
        replies: list[Reply] = []
        for _, fields in entries:
            found, bad = parse_inbound_entry(fields) if fields else ([], 0)
            replies += found
            self.unreadable += bad
        if replies:
            await self._store_replies(replies)

    async def _store_replies(self, replies: Sequence[Reply]) -> None:
        contacts = await attribution_store.contacts_by_phone(self._pool, [r.phone for r in replies])
        ours = [(r, contacts[r.phone]) for r in replies if r.phone in contacts]
        touches = await attribution_store.touches(
            self._pool, [c for _, c in ours], [r.at for r, _ in ours], self._window
        )
        outcomes = [Outcome(c, r.at) for r, c in ours]
        won = attribute_all(outcomes, touches, self._window, REPLY_STATES)
        rows = [
            ReplyRow(r.inbound_id, c, r.at, r.opt_out, r.opt_in, t)
            for (r, c), t in zip(ours, won, strict=True)
        ]
        stored, unsubscribed = await attribution_store.save_replies(self._pool, rows)
        self.replies += stored
        self.unsubscribed += unsubscribed
        for reply, _ in ours:
            if reply.opt_out:
                log.info("reply %d from %s: opt-out", reply.inbound_id, mask_phone(reply.phone))


def _now() -> float:
    return asyncio.get_running_loop().time()
