"""The shared TPS limiter against a real Redis: the limit holds across throttles, smoothly."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.adapters.redis_limiter import SharedBucket, SharedThrottle


async def _send(throttle: SharedThrottle, until: float, stamps: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        await throttle.acquire(1)
        stamps.append(loop.time())


async def test_three_throttles_share_one_limit(redis: aioredis.Redis, clean: None) -> None:
    rate, seconds = 400.0, 2.0
    throttles = [SharedThrottle(SharedBucket(redis, "t:{tps}:a", rate, None)) for _ in range(3)]
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    stamps: list[float] = []
    await asyncio.gather(*(_send(t, until, stamps) for t in throttles))
    # The first burst (20 tokens) plus one grant per throttle may exceed rate × seconds.
    assert rate * seconds * 0.9 <= len(stamps) <= rate * seconds + 20 + 3 * 4 + 3


async def test_no_burst_of_a_second_quota(redis: aioredis.Redis, clean: None) -> None:
    """An operator allowing 200/s refuses 200 in 10 ms: at most the burst goes at once."""
    throttle = SharedThrottle(SharedBucket(redis, "t:{tps}:b", 200.0, None))
    loop = asyncio.get_running_loop()
    stamps: list[float] = []
    await _send(throttle, loop.time() + 1.0, stamps)
    # In any window: the burst (50 ms worth = 10) + what flows in meanwhile + one grant (2).
    for window in (0.01, 0.1):
        worst = max(sum(1 for t in stamps if s <= t < s + window) for s in stamps)
        assert worst <= 10 + 200 * window + 2 + 1


async def test_multi_part_message_larger_than_burst(redis: aioredis.Redis, clean: None) -> None:
    throttle = SharedThrottle(SharedBucket(redis, "t:{tps}:c", 20.0, None))
    await asyncio.wait_for(throttle.acquire(5), 2.0)
    assert throttle.used == 5


async def test_falls_back_to_local_pacing_without_redis() -> None:
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    throttle = SharedThrottle(SharedBucket(unreachable, "t:{tps}:d", 100.0, None))
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(20):
            await throttle.acquire(1)
        assert loop.time() - started >= 0.1  # 20 at 100/s with a 5-token burst
    finally:
        await unreachable.aclose()
