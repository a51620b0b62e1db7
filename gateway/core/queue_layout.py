"""Where the work queue's entries live in Redis: key names and the shard of a message.

One shard is a set of streams (one per priority) and an ``epoch`` key under one hash tag,
so a Redis Cluster keeps each shard on one node and MULTI / blocking XREADGROUP work
within it. With one shard the keys are the historical ``{prefix}:{q}:<priority>``; with
``n`` shards, shard ``s`` is tagged ``{q<s>of<n>}``: naming ``n`` in the tag gives a new
shard count fresh keys, whose missing epochs make the sweeper rebuild the queue from
PostgreSQL instead of stranding entries in streams nobody reads any more.

A message's shard is a multiplicative hash of its id, not ``id % n``: ids made at low
rates end in a zero sequence (``gateway/core/ids.py``), and ``id % 6`` then only ever
hits the even shards.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.message import Priority

_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / φ: Fibonacci hashing spreads every id bit
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class QueueLayout:
    prefix: str
    shards: int = 1

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError("a queue needs at least one shard")

    def tag(self, shard: int) -> str:
        return "{q}" if self.shards == 1 else f"{{q{shard}of{self.shards}}}"

    def stream(self, shard: int, priority: Priority) -> str:
        return f"{self.prefix}:{self.tag(shard)}:{priority.label}"

    def epoch(self, shard: int) -> str:
        return f"{self.prefix}:{self.tag(shard)}:epoch"

    def shard_of(self, message_id: int) -> int:
        if self.shards == 1:
            return 0
        mixed = (message_id * _GOLDEN) & _MASK64
        return (mixed >> 32) % self.shards

    def parse(self, stream: str) -> tuple[int, Priority]:
        """The shard and priority of one of this layout's stream keys."""
        head, _, label = stream.rpartition(":")
        tag = head.rpartition(":")[2]
        shard = 0 if self.shards == 1 else int(tag[2:].partition("of")[0])
        return shard, Priority.from_label(label)

    def split(self, count: int, start: int) -> list[tuple[int, int]]:
        """``count`` spread over the shards from ``start`` on: (shard, share) with a
        share > 0, the shares summing to ``count`` (a read never takes more than asked)."""
        base, extra = divmod(count, self.shards)
        found = []
        for k in range(self.shards):
            share = base + (1 if k < extra else 0)
            if share:
                found.append(((start + k) % self.shards, share))
        return found
