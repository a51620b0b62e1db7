"""The sweeper's walk by ``sweep_at``, and the HOT updates it makes possible (migration 0009),
against a real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import cast

import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import message_store as store
from gateway.adapters.pg import fetch
from gateway.adapters.pg_arrays import int_array
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.ids import IdGenerator
from gateway.core.lifecycle import State
from gateway.core.message import NewMessage, Priority
from gateway.services import sweeper as sweeper_module
from gateway.services.events import EventPublisher
from gateway.services.sweeper import Sweeper
from gateway.settings import DispatchSettings

IDS = IdGenerator(node=903)

HOT_SQL = """
SELECT COALESCE(sum(n_tup_upd), 0), COALESCE(sum(n_tup_hot_upd), 0) FROM pg_stat_xact_user_tables
WHERE relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'messages'::regclass)
"""


def message() -> NewMessage:
    return NewMessage(1, "+79211234567", "Shop", "hi", Priority.BULK, "gsm7", 1)


def submitted(mid: int) -> store.Submitted:
    return store.Submitted(mid, "sim", Decimal("0.35"), (f"p{mid}",), (f"p{mid}",))


async def test_the_four_updates_of_a_message_are_hot(pool: aiopg.Pool, clean: None) -> None:
    """Queued, claimed, submitted, delivered: no index names a column they change."""
    mid = IDS.next()
    ids = int_array([mid])
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        # The counts also hold what earlier transactions of this connection have not yet
        # flushed; nothing is flushed inside a transaction, so the difference is ours.
        await cur.execute(HOT_SQL)
        before = await cur.fetchone()
        await store.insert_rows(cur, [(mid, message(), None)], 10.0)
        await cur.execute(store.MARK_QUEUED_SQL, (ids, None, ids))
        await cur.execute(store.CLAIM_SQL, (ids, 60.0, 60.0, ids))
        await store.record_submitted(cur, [submitted(mid)], [])
        await store.record_final(cur, [store.FinalUpdate(mid, State.DELIVERED)])
        await cur.execute(HOT_SQL)
        after = await cur.fetchone()
    assert (after[0] - before[0], after[1] - before[1]) == (4, 4)


async def test_a_claim_after_the_sweeper_passed_moves_sweep_at(
    pool: aiopg.Pool, clean: None
) -> None:
    mid = IDS.next()
    await store.insert(pool, [(mid, message())], 0.0)  # sweep_at: the insert's now()
    await store.claim(pool, [mid], 60.0)
    [(sweep_at, due_at)] = await fetch(
        pool, "SELECT sweep_at, due_at FROM messages WHERE id = %s", (mid,)
    )
    assert sweep_at == due_at  # visited when the lease ends


async def test_the_walk_enqueues_revisits_and_expires(
    pool: aiopg.Pool, redis: aioredis.Redis, clean: None
) -> None:
    settings = DispatchSettings(receipt_timeout_s=0.6, receipt_grace_s=3600.0)
    queue = RedisQueue(redis, "sweep-test", "g")
    await queue.ensure_groups()
    assert await queue.claim_rebuild()
    sweeper = Sweeper(settings, pool, queue, EventPublisher(queue, 1000), margin_s=0.0)
    stranded, leased, waiting, queued = IDS.next(), IDS.next(), IDS.next(), IDS.next()
    await store.insert(pool, [(stranded, message()), (leased, message())], 0.0)
    await store.insert(pool, [(waiting, message()), (queued, message())], 0.3)
    await store.claim(pool, [leased], 1.0)  # a dispatcher that dies holding it
    await store.claim(pool, [waiting], 60.0)
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await store.record_submitted(cur, [submitted(waiting)], [])  # its receipt never comes
    await store.mark_queued(pool, [queued])

    assert await sweeper.sweep() == 1  # the one whose API process died before its XADD
    assert await states(pool, stranded) == (State.QUEUED, True)
    await asyncio.sleep(1.3)
    assert await sweeper.sweep() == 1  # the lease ended
    assert await states(pool, leased) == (State.QUEUED, True)
    assert await states(pool, waiting) == (State.EXPIRED, False)  # 0.6 s after submission
    assert sweeper.expired == 1
    assert await states(pool, queued) == (State.QUEUED, True)  # left to its stream
    assert await sweeper.sweep() == 0
    assert (await store.sweep_cursor(pool))[0] > (await sweep_at(pool, queued))


async def states(pool: aiopg.Pool, mid: int) -> tuple[State, bool]:
    [(state, in_queue)] = await fetch(
        pool, "SELECT state, in_queue FROM messages WHERE id = %s", (mid,)
    )
    return State(state), bool(in_queue)


async def sweep_at(pool: aiopg.Pool, mid: int) -> datetime:
    return cast(
        datetime, (await fetch(pool, "SELECT sweep_at FROM messages WHERE id = %s", (mid,)))[0][0]
    )


async def test_the_walk_goes_on_batch_after_batch(
    pool: aiopg.Pool, redis: aioredis.Redis, clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five stranded messages read two at a time: one sweep enqueues them all."""
    monkeypatch.setattr(sweeper_module, "BATCH", 2)
    queue = RedisQueue(redis, "sweep-batches", "g")
    await queue.ensure_groups()
    assert await queue.claim_rebuild()
    sweeper = Sweeper(DispatchSettings(), pool, queue, EventPublisher(queue, 1000), margin_s=0.0)
    ids = [IDS.next() for _ in range(5)]
    await store.insert(pool, [(mid, message()) for mid in ids], 0.0)
    assert await sweeper.sweep() == 5
    assert {await states(pool, mid) for mid in ids} == {(State.QUEUED, True)}
    assert await sweeper.sweep() == 0
