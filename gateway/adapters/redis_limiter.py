"""A provider's TPS limit shared by every process and machine: a GCRA bucket in Redis.

Theory of operation. The limit is one key per provider holding the bucket's theoretical
arrival time (TAT, microseconds on the Redis server's clock, so machines need no clock
sync). A Lua script grants up to ``n`` tokens at once: as many as the tolerance allows
now, advancing the TAT by one interval per token; when none is left it answers how long
to wait for the next. The tolerance is the burst (50 ms worth by default): an operator
that allows 100/s refuses 100 sent in 10 ms, so tokens flow evenly, never a second's
quota at once.

A process takes tokens in small grants (about 10 ms worth), not one per message, so a
message costs no Redis round trip of its own; what a grant leaves over is used by the
next callers in this process and thrown away after ``_GRANT_TTL_S`` (a token used much
later than it was granted would make a burst). Waiters go in arrival order. If Redis
cannot be reached the process paces itself with a local bucket at the full rate, and
says so in the log: the queue lives in Redis too, so little is sent meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.core.ratelimit import TokenBucket

log = logging.getLogger("gateway.limiter")

_GRANT_TTL_S = 0.05
# Also the API limits' script (gateway/adapters/api_limiter.py).
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local granted = math.floor((now + tolerance - tat) / interval)
if granted > wanted then granted = wanted end
if granted <= 0 then
  return {0, tat + interval - tolerance - now}
end
tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {granted, 0}
"""


@dataclass(frozen=True, slots=True)
class Grant:
    tokens: int
    wait_s: float  # when ``tokens`` is 0: how long until the next token


class SharedBucket:
    """The Redis side: one call grants up to ``n`` tokens of a provider's limit."""

    def __init__(self, redis: aioredis.Redis, key: str, rate: float, burst: float | None) -> None:
        self.rate = rate
        self.key = key
        interval = 1_000_000 / rate
        self._interval = interval
        self._tolerance = max(interval, (burst if burst is not None else rate * 0.05) * interval)
        self._script = redis.register_script(GCRA_LUA)

    async def take(self, wanted: int) -> Grant:
        granted, wait_us = await self._script(
            keys=[self.key], args=[self._interval, self._tolerance, wanted]
        )
        return Grant(int(granted), max(0.0, float(wait_us)) / 1_000_000)


class SharedThrottle:
    """Paces this process's submissions to a provider within the shared limit (FIFO)."""

    def __init__(self, bucket: SharedBucket) -> None:
        self._bucket = bucket
        self._batch = max(1, min(100, round(bucket.rate * 0.01)))
        self._local = 0
        self._granted_at = 0.0
        self._turn = asyncio.Lock()
        self._fallback: TokenBucket | None = None
        self.used = 0  # tokens used by this process (for the pool's "TPS used")
        self._waiting = 0

    @property
    def rate(self) -> float:
        return self._bucket.rate

    def backlog(self) -> int:
        """Parts waiting for tokens in this process (routing spills past a long backlog)."""
        return self._waiting

    async def acquire(self, parts: int) -> None:
        self._waiting += parts
        try:
            await self._acquire(parts)
        finally:
            self._waiting -= parts

    async def _acquire(self, parts: int) -> None:
        async with self._turn:
            loop = asyncio.get_running_loop()
            if loop.time() - self._granted_at > _GRANT_TTL_S:
                self._local = 0
            while self._local < parts:
                await self._refill(parts - self._local, loop)
            self._local -= parts
            self.used += parts

    async def _refill(self, missing: int, loop: asyncio.AbstractEventLoop) -> None:
        try:
            grant = await self._bucket.take(max(missing, self._batch))
        except TRANSIENT as exc:
            raise_if_cancelling()
            await self._pace_locally(missing, loop, exc)
            return
        self._fallback = None
        if grant.tokens:
            self._local += grant.tokens
            self._granted_at = loop.time()
        else:
            await asyncio.sleep(grant.wait_s)  # pacing: the wait is the point

    async def _pace_locally(
        self, missing: int, loop: asyncio.AbstractEventLoop, exc: BaseException
    ) -> None:
        if self._fallback is None:
            log.warning("shared limiter %s unreachable (%r); pacing locally", self._bucket.key, exc)
            self._fallback = TokenBucket(self._bucket.rate, now=loop.time())
        wait = self._fallback.take(missing, loop.time())
        if wait > 0:
            await asyncio.sleep(wait)
        self._local += missing
        self._granted_at = loop.time()
