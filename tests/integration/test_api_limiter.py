"""The API's request limits against a real Redis: per key, per IP, shared by processes."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.adapters.api_limiter import ApiLimiter
from gateway.core.api_limits import ApiLimitSettings
from gateway.core.errors import RequestsLimited

# Slow refills (1/s), so that a loaded machine's slowness does not show in the counts.
SMALL = ApiLimitSettings(key_rps=1, key_burst=10, ip_rps=1, ip_burst=30)


async def admitted(limiter: ApiLimiter, n: int, address: str, key: str | None) -> int:
    passed = 0
    for _ in range(n):
        try:
            await limiter.admit(address, key)
        except RequestsLimited:
            continue
        passed += 1
    return passed


async def test_a_key_gets_its_burst_then_a_429_naming_it(
    redis: aioredis.Redis, clean: None
) -> None:
    limiter = ApiLimiter(redis, "t", SMALL)
    assert await admitted(limiter, 10, "192.0.2.1", "sk_a") == 10
    with pytest.raises(RequestsLimited) as refused:
        await limiter.admit("192.0.2.1", "sk_a")
    error = refused.value.to_json()["error"]
    assert error["limit"] == "api_key_rps" and error["value"] == 1
    assert 0 < refused.value.retry_after <= 1.0
    assert await admitted(limiter, 5, "192.0.2.1", "sk_b") == 5  # other keys unaffected


async def test_the_limit_is_shared_by_every_process(redis: aioredis.Redis, clean: None) -> None:
    """Three limiters (three processes) together get one burst, not three."""
    limiters = [ApiLimiter(redis, "t", SMALL) for _ in range(3)]
    counts = await asyncio.gather(*(admitted(x, 10, "192.0.2.1", "sk_a") for x in limiters))
    assert 10 <= sum(counts) <= 11  # the burst, plus what flows in meanwhile


async def test_bad_keys_from_one_address_are_stopped_per_ip(
    redis: aioredis.Redis, clean: None
) -> None:
    limiter = ApiLimiter(redis, "t", ApiLimitSettings(ip_rps=2, ip_burst=30))
    passed = [await admitted(limiter, 1, "198.51.100.7", f"sk_bad{i}") for i in range(40)]
    assert 30 <= sum(passed) <= 31
    with pytest.raises(RequestsLimited) as refused:
        await limiter.admit("198.51.100.7", None)
    assert refused.value.limit_name == "ip_rps"
    assert await admitted(limiter, 1, "198.51.100.8", None) == 1


async def test_exempt_networks_are_not_limited_per_ip(redis: aioredis.Redis, clean: None) -> None:
    settings = ApiLimitSettings(ip_rps=1, ip_burst=1, exempt=("127.0.0.0/8",))
    limiter = ApiLimiter(redis, "t", settings)
    assert await admitted(limiter, 20, "127.0.0.1", None) == 20
    assert await admitted(limiter, 20, "192.0.2.1", None) == 1


async def test_tokens_flow_back_at_the_rate(redis: aioredis.Redis, clean: None) -> None:
    limiter = ApiLimiter(redis, "t", ApiLimitSettings(key_rps=10, key_burst=5))
    assert 5 <= await admitted(limiter, 10, "192.0.2.1", "sk_a") <= 6
    await asyncio.sleep(0.5)  # the refill is the behaviour under test: 5 tokens in 0.5 s
    assert 4 <= await admitted(limiter, 10, "192.0.2.1", "sk_a") <= 7


async def test_redis_down_leaves_the_api_open() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        limiter = ApiLimiter(dead, "t", SMALL)
        assert await admitted(limiter, 3, "192.0.2.1", "sk_a") == 3
    finally:
        await dead.aclose()
