"""The per-process key cache against a real PostgreSQL: one query for a burst, a second's
bound on revocation, failures not cached."""

from __future__ import annotations

import asyncio

import aiopg
import pytest

from gateway.adapters import client_store
from gateway.adapters.client_store import Client
from gateway.adapters.key_cache import KeyCache


class CountingLookup:
    def __init__(self, pool: aiopg.Pool) -> None:
        self.pool = pool
        self.calls = 0
        self.fail = False

    async def __call__(self, api_key: str) -> Client | None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("database unreachable")
        return await client_store.by_key(self.pool, api_key)


async def test_a_burst_on_a_cold_key_makes_one_query(pool: aiopg.Pool, clean: None) -> None:
    created = await client_store.create(pool, "cached")
    lookup = CountingLookup(pool)
    cache = KeyCache(lookup)
    found = await asyncio.gather(*(cache.get(created.api_key) for _ in range(64)))
    assert lookup.calls == 1 and {c.id for c in found if c} == {created.client.id}


async def test_revocation_shows_once_the_entry_expires(pool: aiopg.Pool, clean: None) -> None:
    created = await client_store.create(pool, "revoked")
    cache = KeyCache(CountingLookup(pool), ttl_s=0.2)
    assert await cache.get(created.api_key) is not None
    await client_store.revoke(pool, created.api_key[:10])
    assert await cache.get(created.api_key) is not None  # still cached...
    await asyncio.sleep(0.25)  # ...until the TTL, which is the behaviour under test
    assert await cache.get(created.api_key) is None


async def test_a_failed_lookup_is_not_cached(pool: aiopg.Pool, clean: None) -> None:
    created = await client_store.create(pool, "flaky")
    lookup = CountingLookup(pool)
    cache = KeyCache(lookup)
    lookup.fail = True
    with pytest.raises(ConnectionError):
        await cache.get(created.api_key)
    lookup.fail = False
    assert await cache.get(created.api_key) is not None
    assert lookup.calls == 2
