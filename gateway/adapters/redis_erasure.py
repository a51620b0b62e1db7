"""Erasure in Redis: every key of the gateway's database is looked at, whatever wrote it.

Redis is a work queue and a cache, not the record, so what holds the number goes:
a key whose name holds it (counters, caches) is deleted; a hash field, list, set or
sorted-set member holding it is removed; a stream entry holding it is deleted, and if it
was a batch (a JSON list, like the inbound stream's ``messages``) the other items are
added again as a new entry (consumers see them again: delivery is at least once anyway).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from gateway.core.erasure import Subject, rewrite_fields

CHUNK = 500


async def erase(redis: aioredis.Redis, subject: Subject) -> dict[str, int]:
    """Remove the subject from every key; returns counts per kind of removal."""
    counts = {"keys": 0, "members": 0, "stream_entries": 0}
    async for raw in redis.scan_iter(count=CHUNK):
        key = _text(raw)
        if subject.found_in(key):
            counts["keys"] += await redis.delete(raw)
            continue
        kind = _text(await redis.type(raw))
        handler = _HANDLERS.get(kind)
        if handler is not None:
            counts[_COUNTED[kind]] += await handler(redis, raw, subject)
    return counts


async def _string(redis: aioredis.Redis, key: bytes, subject: Subject) -> int:
    value = await redis.get(key)
    if value is not None and subject.found_in(_text(value)):
        return int(await redis.delete(key))
    return 0


async def _hash(redis: aioredis.Redis, key: bytes, subject: Subject) -> int:
    found = [
        f
        async for f, v in redis.hscan_iter(key, count=CHUNK)
        if subject.found_in(_text(f)) or subject.found_in(_text(v))
    ]
    return int(await redis.hdel(key, *found)) if found else 0


async def _list(redis: aioredis.Redis, key: bytes, subject: Subject) -> int:
    values = {_text(v) for v in await redis.lrange(key, 0, -1) if subject.found_in(_text(v))}
    removed = 0
    for value in values:
        removed += int(await redis.lrem(key, 0, value))
    return removed


async def _set(redis: aioredis.Redis, key: bytes, subject: Subject) -> int:
    found = [m async for m in redis.sscan_iter(key, count=CHUNK) if subject.found_in(_text(m))]
    return int(await redis.srem(key, *found)) if found else 0


async def _zset(redis: aioredis.Redis, key: bytes, subject: Subject) -> int:
    found = [m async for m, _ in redis.zscan_iter(key, count=CHUNK) if subject.found_in(_text(m))]
    return int(await redis.zrem(key, *found)) if found else 0


async def _stream(redis: aioredis.Redis, key: bytes, subject: Subject) -> int:
    removed, start = 0, "-"
    while True:
        entries: list[Any] = await redis.xrange(key, min=start, count=CHUNK) or []
        for entry_id, fields in entries:
            removed += await _stream_entry(redis, key, entry_id, fields, subject)
        if len(entries) < CHUNK:
            return removed
        start = "(" + _text(entries[-1][0])


async def _stream_entry(
    redis: aioredis.Redis,
    key: bytes,
    entry_id: bytes,
    fields: dict[Any, Any],
    subject: Subject,
) -> int:
    text = {_text(k): _text(v) for k, v in fields.items()}
    if not any(subject.found_in(v) for v in text.values()):
        return 0
    kept = rewrite_fields(text, subject)
    await redis.xdel(key, entry_id)
    if kept is not None:
        await redis.xadd(key, kept)  # type: ignore[arg-type]
    return 1


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


_Handler = Callable[[aioredis.Redis, bytes, Subject], Awaitable[int]]
_HANDLERS: dict[str, _Handler] = {
    "string": _string,
    "hash": _hash,
    "list": _list,
    "set": _set,
    "zset": _zset,
    "stream": _stream,
}
_COUNTED = {
    "string": "keys",
    "hash": "members",
    "list": "members",
    "set": "members",
    "zset": "members",
    "stream": "stream_entries",
}
