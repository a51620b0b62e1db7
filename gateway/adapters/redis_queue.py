"""The work queue: Redis streams per priority, read by a consumer group, in shards.

Entries carry only the message id; the record is in PostgreSQL. A shard holds one stream
per priority and an ``epoch`` key under one hash tag (``gateway/core/queue_layout.py``),
so a Redis Cluster keeps each shard on one node: the queue spreads over the nodes by
shard, and each enqueue script or blocking read stays within one. The epoch is set when a shard is
(re)built: if any shard's is gone, Redis lost (part of) its data and the queue must be
rebuilt from PostgreSQL.

One shard (the default on a plain Redis) keeps the historical keys and behaviour. On a
cluster the default is ``CLUSTER_SHARDS``: a fixed number, so adding nodes does not
change the keys (slots move with their data), two per node of the usual 3-primary
cluster, and its tags fall two per node on an evenly split one (a unit test checks).
A blocking XREADGROUP cannot span nodes, so on a cluster ``wait`` blocks on one shard at
a time in rotation, for at most ``WAIT_SLICE_MS``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.adapters.redis_client import is_cluster
from gateway.core.message import Priority
from gateway.core.queue_layout import QueueLayout

CLUSTER_SHARDS = 6
WAIT_SLICE_MS = 50  # a wait on a cluster: the longest a message on another shard waits

Epochs = dict[int, bytes | None]  # shard → its epoch as seen at an XADD

# KEYS: a shard's epoch, then its streams by priority; ARGV: (priority, message id) pairs.
# The XADDs and the epoch read in one script: atomic, like a MULTI, and on a cluster a
# MULTI pipeline costs a thread per queued command in redis-py (~300 µs per message).
ENQUEUE_LUA = """
for i = 1, #ARGV, 2 do
  redis.call('XADD', KEYS[2 + tonumber(ARGV[i])], '*', 'i', ARGV[i + 1])
end
return redis.call('GET', KEYS[1])
"""
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    priority: Priority
    entry_id: bytes
    message_id: int
    shard: int = 0


class RedisQueue:
    def __init__(self, client: aioredis.Redis, prefix: str, group: str, shards: int = 0) -> None:
        self.client = client
        self.group = group
        self.cluster = is_cluster(client)
        self.layout = QueueLayout(prefix, shards or (CLUSTER_SHARDS if self.cluster else 1))
        self.events_key = f"{prefix}:{{ev}}:events"
        # The shard the next read starts from, and the one the next wait blocks on (apart:
        # reads and waits alternate, so one turn would leave every other shard unwaited).
        self._turns = {"read": 0, "wait": 0}
        self._enqueue = client.register_script(ENQUEUE_LUA)

    @property
    def shards(self) -> range:
        return range(self.layout.shards)

    @property
    def stream_keys(self) -> dict[Priority, list[str]]:
        """Every stream of each priority, one per shard."""
        return {p: [self.layout.stream(s, p) for s in self.shards] for p in Priority}

    async def ensure_groups(self) -> None:
        for streams in self.stream_keys.values():
            for stream in streams:
                try:
                    await self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    async def enqueue(self, items: Iterable[tuple[int, Priority]]) -> Epochs:
        """XADD the entries; returns each written shard's epoch read atomically with its
        entries (one script per shard: its streams and epoch share a hash tag), to tell
        later whether Redis lost that shard's data since (see ``still_there``)."""
        by_shard: dict[int, list[tuple[int, Priority]]] = {}
        for message_id, priority in items:
            by_shard.setdefault(self.layout.shard_of(message_id), []).append((message_id, priority))
        shards = list(by_shard)
        epochs = await _each(shards, lambda s: self._enqueue_shard(s, by_shard[s]))
        return dict(zip(shards, epochs, strict=True))

    async def _enqueue_shard(self, shard: int, items: list[tuple[int, Priority]]) -> bytes | None:
        keys = [self.layout.epoch(shard), *(self.layout.stream(shard, p) for p in Priority)]
        args = [v for message_id, priority in items for v in (int(priority), message_id)]
        epoch: bytes | None = await self._enqueue(keys=keys, args=args)
        return epoch

    async def still_there(self, epochs: Epochs) -> bool:
        """False when an epoch seen at an XADD is gone or replaced: a flush or a restart
        of that shard's node came in between, and its entries may be lost. (None seen:
        the XADD came after the loss, and the rebuild to come keeps what it added.)"""
        seen = {s: e for s, e in epochs.items() if e is not None}
        if not seen:
            return True
        pipe = self.client.pipeline(transaction=False)
        for shard in seen:
            pipe.get(self.layout.epoch(shard))
        return list(seen.values()) == await pipe.execute()

    async def read(
        self, consumer: str, counts: dict[Priority, int], block_ms: int | None
    ) -> list[Entry]:
        """Up to ``counts[p]`` new entries of each priority asked for, spread over the
        shards (from a rotating first one, so small counts favour none); one XREADGROUP
        per shard and share (on a cluster each costs a COMMAND GETKEYS before Redis 7)."""
        calls: dict[tuple[int, int], list[str]] = {}
        start = self._next_turn("read")
        for priority, count in sorted(counts.items()):
            for shard, share in self.layout.split(max(0, count), start):
                calls.setdefault((shard, share), []).append(self.layout.stream(shard, priority))
        if not calls:
            return []
        block = block_ms if len(calls) == 1 else None
        pipe = self.client.pipeline(transaction=False)
        for (_, share), streams in calls.items():
            pipe.xreadgroup(
                self.group, consumer, dict.fromkeys(streams, ">"), count=share, block=block
            )
        replies = await pipe.execute()
        return [e for reply in replies for e in _entries(reply, self.layout.parse)]

    async def wait(self, consumer: str, counts: dict[Priority, int], block_ms: int) -> list[Entry]:
        """Block until a stream with room has entries: one call over all of them on a
        plain Redis; on a cluster over one shard's, for a slice of ``block_ms``."""
        wanted = [p for p, n in counts.items() if n > 0]
        shards = [self._next_turn("wait")] if self.cluster else list(self.shards)
        count = -(-max(counts.values(), default=0) // len(shards))  # a share per shard
        if not wanted or count <= 0:
            return []
        if self.cluster and self.layout.shards > 1:
            block_ms = min(block_ms, WAIT_SLICE_MS)
        streams: dict[Any, Any] = {
            self.layout.stream(s, p): ">" for s in shards for p in sorted(wanted)
        }
        reply = await self.client.xreadgroup(
            self.group, consumer, streams, count=count, block=block_ms
        )
        return _entries(reply, self.layout.parse)

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Acknowledge and delete handled entries (a stream must not grow without end)."""
        if not entries:
            return
        by_stream: dict[str, list[bytes]] = {}
        for entry in entries:
            stream = self.layout.stream(entry.shard, entry.priority)
            by_stream.setdefault(stream, []).append(entry.entry_id)
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, self.group, *ids)
            pipe.xdel(stream, *ids)
        await pipe.execute()

    async def reclaim(self, consumer: str, idle_ms: int, count: int) -> list[Entry]:
        """Take over entries a dead consumer read but never acknowledged."""
        streams = [s for keys in self.stream_keys.values() for s in keys]
        pipe = self.client.pipeline(transaction=False)
        for stream in streams:
            pipe.xautoclaim(
                stream, self.group, consumer, min_idle_time=idle_ms, start_id="0-0", count=count
            )
        replies = await pipe.execute()
        return [
            e
            for stream, reply in zip(streams, replies, strict=True)
            for e in _entries([(stream, reply[1])], self.layout.parse)
        ]

    async def lengths(self) -> dict[Priority, int]:
        """Entries waiting or in flight per priority, summed over the shards."""
        keys = self.stream_keys
        pipe = self.client.pipeline(transaction=False)
        for streams in keys.values():
            for stream in streams:
                pipe.xlen(stream)
        found = iter(await pipe.execute())
        return {p: sum(next(found) for _ in streams) for p, streams in keys.items()}

    async def epoch_present(self) -> bool:
        """False when any shard lost its epoch: its entries are gone (invariant 2)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.exists(self.layout.epoch(shard))
        return all(await pipe.execute())

    async def claim_rebuild(self) -> bool:
        """True for the one process that gets to rebuild a lost queue: the one that set
        a missing epoch (two shards lost at once may let two rebuild: harmless, as an
        entry added twice is claimed once)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.set(self.layout.epoch(shard), str(time.time()), nx=True)
        return any(await pipe.execute())

    async def publish(self, events: Sequence[dict[str, str]], maxlen: int) -> None:
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.events_key, event, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()

    def _next_turn(self, of: str) -> int:
        turn = self._turns[of]
        self._turns[of] = (turn + 1) % self.layout.shards
        return turn


async def _each(shards: list[int], work: Callable[[int], Awaitable[T]]) -> list[T]:
    """``work`` for every shard, at once when there are several (their nodes differ)."""
    if len(shards) == 1:
        return [await work(shards[0])]
    return list(await asyncio.gather(*(work(s) for s in shards)))


def _entries(reply: Any, parse: Callable[[str], tuple[int, Priority]]) -> list[Entry]:
    if not reply:
        return []
    result = []
    for stream, items in reply:
        shard, priority = parse(stream.decode() if isinstance(stream, bytes) else stream)
        result += [
            Entry(priority, eid, int(fields[b"i"]), shard) for eid, fields in items if fields
        ]
    return result
