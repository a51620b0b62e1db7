"""The work queue: one Redis stream per priority, read by a consumer group.

Entries carry only the message id; the record is in PostgreSQL. Every call takes a
batch and goes through one pipeline. Keys share the hash tag ``{q}`` so that a Redis
Cluster keeps them on one shard. The ``epoch`` key is set when the queue is (re)built:
if it is gone, Redis lost its data and the queue must be rebuilt from PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.core.message import Priority


@dataclass(frozen=True, slots=True)
class Entry:
    priority: Priority
    entry_id: bytes
    message_id: int


class RedisQueue:
    def __init__(self, client: aioredis.Redis, prefix: str, group: str) -> None:
        self.client = client
        self.group = group
        self.streams = {p: f"{prefix}:{{q}}:{p.label}" for p in Priority}
        self.epoch_key = f"{prefix}:{{q}}:epoch"
        self.events_key = f"{prefix}:{{ev}}:events"

    async def ensure_groups(self) -> None:
        for stream in self.streams.values():
            try:
                await self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def enqueue(self, items: Iterable[tuple[int, Priority]]) -> bytes | None:
        """XADD the entries; returns the queue's epoch read atomically with them (MULTI:
        the streams and the epoch share a hash tag), to tell later whether Redis lost
        its data since (see ``still_there``)."""
        pipe = self.client.pipeline(transaction=True)
        for message_id, priority in items:
            pipe.xadd(self.streams[priority], {"i": message_id})
        pipe.get(self.epoch_key)
        replies = await pipe.execute()
        epoch: bytes | None = replies[-1]
        return epoch

    async def still_there(self, epoch: bytes | None) -> bool:
        """False when the epoch seen at an XADD is gone or replaced: a flush or a restart
        of Redis came in between, and the entries may be lost."""
        return epoch is None or await self.client.get(self.epoch_key) == epoch

    async def read(
        self, consumer: str, counts: dict[Priority, int], block_ms: int | None
    ) -> list[Entry]:
        """Up to ``counts[p]`` new entries of each priority asked for."""
        wanted = {p: n for p, n in counts.items() if n > 0}
        if not wanted:
            return []
        pipe = self.client.pipeline(transaction=False)
        for priority, count in sorted(wanted.items()):
            pipe.xreadgroup(
                self.group,
                consumer,
                {self.streams[priority]: ">"},
                count=count,
                block=block_ms if len(wanted) == 1 else None,
            )
        replies = await pipe.execute()
        return [e for reply in replies for e in _entries(reply, self._priority_of)]

    async def wait(self, consumer: str, counts: dict[Priority, int], block_ms: int) -> list[Entry]:
        """Block until any stream with room has entries (one call over all of them)."""
        streams: dict[Any, Any] = {self.streams[p]: ">" for p, n in counts.items() if n > 0}
        count = max(counts.values(), default=0)
        if not streams or count <= 0:
            return []
        reply = await self.client.xreadgroup(
            self.group, consumer, streams, count=count, block=block_ms
        )
        return _entries(reply, self._priority_of)

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Acknowledge and delete handled entries (a stream must not grow without end)."""
        if not entries:
            return
        by_stream: dict[str, list[bytes]] = {}
        for entry in entries:
            by_stream.setdefault(self.streams[entry.priority], []).append(entry.entry_id)
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, self.group, *ids)
            pipe.xdel(stream, *ids)
        await pipe.execute()

    async def reclaim(self, consumer: str, idle_ms: int, count: int) -> list[Entry]:
        """Take over entries a dead consumer read but never acknowledged."""
        entries: list[Entry] = []
        for priority, stream in self.streams.items():
            reply = await self.client.xautoclaim(
                stream, self.group, consumer, min_idle_time=idle_ms, start_id="0-0", count=count
            )
            entries += [
                Entry(priority, eid, int(fields[b"i"])) for eid, fields in reply[1] if fields
            ]
        return entries

    async def lengths(self) -> dict[Priority, int]:
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams.values():
            pipe.xlen(stream)
        return dict(zip(self.streams, await pipe.execute(), strict=True))

    async def epoch_present(self) -> bool:
        return bool(await self.client.exists(self.epoch_key))

    async def claim_rebuild(self) -> bool:
        """True for the one process that gets to rebuild a lost queue."""
        return bool(await self.client.set(self.epoch_key, str(time.time()), nx=True))

    async def publish(self, events: Sequence[dict[str, str]], maxlen: int) -> None:
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.events_key, event, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()

    def _priority_of(self, stream: bytes | str) -> Priority:
        name = stream.decode() if isinstance(stream, bytes) else stream
        return Priority.from_label(name.rsplit(":", 1)[1])


def _entries(reply: Any, priority_of: Callable[[bytes | str], Priority]) -> list[Entry]:
    if not reply:
        return []
    result = []
    for stream, items in reply:
        priority = priority_of(stream)
        result += [Entry(priority, eid, int(fields[b"i"])) for eid, fields in items if fields]
    return result
