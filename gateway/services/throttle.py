"""Pacing submissions to a provider's TPS contract, in this process (FIFO, smooth).

A limit shared by every process and machine (a token bucket in Redis) is the
provider-pools work; until then each process paces itself to the configured rate.
"""

from __future__ import annotations

import asyncio

from gateway.core.ratelimit import TokenBucket


class Throttle:
    def __init__(self, rate: float) -> None:
        self._bucket = TokenBucket(rate, now=asyncio.get_running_loop().time())
        self._turn = asyncio.Lock()  # waiters go in arrival order

    async def acquire(self, parts: int) -> None:
        async with self._turn:
            wait = self._bucket.take(parts, asyncio.get_running_loop().time())
            if wait > 0:
                await asyncio.sleep(wait)  # pacing: the wait is the point
