"""The OTP pumping counters against a real Redis: all or nothing, atomic across callers."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.adapters.otp_store import PumpingCounters
from gateway.core.otp import Counter, Reason

NUMBER = Counter(Reason.DESTINATION, "+79211234567", 3, 600)
RANGE = Counter(Reason.PREFIX, "79211234", 5, 600)
COUNTRY = Counter(Reason.COUNTRY, "RU", 100, 0)


async def test_a_refused_send_counts_nowhere(redis: aioredis.Redis, clean: None) -> None:
    counters = PumpingCounters(redis, "t")
    for send in range(3):
        assert await counters.admit(1, [NUMBER, RANGE, COUNTRY], send, "RU") is None
    refused = await counters.admit(1, [NUMBER, RANGE, COUNTRY], 3, "RU")
    assert refused is not None and refused.counter == NUMBER and refused.first
    assert 599 <= refused.retry_after_s <= 600
    again = await counters.admit(1, [NUMBER, RANGE, COUNTRY], 4, "RU")
    assert again is not None and not again.first  # one alert per counter per window
    other = Counter(Reason.DESTINATION, "+79211234568", 3, 600)
    assert await counters.admit(1, [other, RANGE, COUNTRY], 5, "RU") is None
    assert await counters.admit(1, [other, RANGE, COUNTRY], 6, "RU") is None
    refused = await counters.admit(1, [other, RANGE, COUNTRY], 7, "RU")
    assert refused is not None and refused.counter == RANGE  # 5 in the range, not 7
    assert await counters.blocked() == {("otp_destination", "RU"): 2, ("otp_prefix", "RU"): 1}


async def test_counters_are_per_client_and_given_back(redis: aioredis.Redis, clean: None) -> None:
    counters = PumpingCounters(redis, "t")
    for send in range(3):
        assert await counters.admit(1, [NUMBER, COUNTRY], send, "RU") is None
    assert await counters.admit(2, [NUMBER, COUNTRY], 9, "RU") is None  # another client
    await counters.give_back(1, [NUMBER, COUNTRY], 2)
    assert await counters.admit(1, [NUMBER, COUNTRY], 10, "RU") is None
    day_key = counters.key(1, COUNTRY, 0).rsplit(":", 1)[0]
    [key] = [k async for k in redis.scan_iter(f"{day_key}:d*")]
    assert int(await redis.get(key)) == 3  # 4 admitted, 1 given back


async def test_a_zero_cap_closes_a_country(redis: aioredis.Redis, clean: None) -> None:
    closed = Counter(Reason.COUNTRY, "TJ", 0, 0)
    refused = await PumpingCounters(redis, "t").admit(1, [closed], 1, "TJ")
    assert refused is not None and 0 < refused.retry_after_s <= 86400


async def test_concurrent_sends_never_pass_a_limit(redis: aioredis.Redis, clean: None) -> None:
    """50 sends at once over separate connections: exactly the limit gets through."""
    clients = [aioredis.from_url(_url(redis)) for _ in range(5)]
    try:
        counters = [PumpingCounters(c, "t") for c in clients]
        results = await asyncio.gather(
            *(counters[i % 5].admit(1, [RANGE, COUNTRY], i, "RU") for i in range(50))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert sum(r is None for r in results) == RANGE.limit
    assert sum(r is not None and r.first for r in results) == 1


def _url(redis: aioredis.Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
