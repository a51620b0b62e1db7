"""The message store against a real PostgreSQL: monotonic states, claims, idempotent inserts."""

from __future__ import annotations

from decimal import Decimal

import aiopg
import redis.asyncio as aioredis

from gateway.adapters import message_store as store
from gateway.adapters.pg import fetch
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.ids import IdGenerator
from gateway.core.lifecycle import State
from gateway.core.message import NewMessage, Priority
from gateway.core.sweeping import Action, decide

IDS = IdGenerator(node=900)


def message(ref: str | None = None) -> NewMessage:
    return NewMessage(1, "+79211234567", "Shop", "hi", Priority.BULK, "gsm7", 1, client_ref=ref)


async def state_of(pool: aiopg.Pool, message_id: int) -> State:
    return State(
        (await fetch(pool, "SELECT state FROM messages WHERE id = %s", (message_id,)))[0][0]
    )


async def transaction(pool: aiopg.Pool, func, *args):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        return await func(cur, *args)


async def test_a_late_submitted_never_moves_a_final_state_back(
    pool: aiopg.Pool, clean: None
) -> None:
    mid = IDS.next()
    await store.insert(pool, [(mid, message())], 10.0)
    [claimed] = await store.claim(pool, [mid], 60.0)
    await transaction(pool, store.record_final, [store.FinalUpdate(mid, State.DELIVERED)])
    late = store.Submitted(mid, "sim", Decimal("0.35"), ("ab",), ("ab",))
    events, _ = await transaction(pool, store.record_submitted, [late], [])
    assert events == [] and await state_of(pool, mid) is State.DELIVERED
    again = await transaction(pool, store.record_final, [store.FinalUpdate(mid, State.REJECTED)])
    assert again == [] and await state_of(pool, mid) is State.DELIVERED
    assert claimed.id == mid


async def test_a_message_with_an_outcome_is_never_claimed_again(
    pool: aiopg.Pool, clean: None
) -> None:
    done, waiting = IDS.next(), IDS.next()
    await store.insert(pool, [(done, message()), (waiting, message())], 10.0)
    await transaction(pool, store.record_final, [store.FinalUpdate(done, State.EXPIRED)])
    claimed = await store.claim(pool, [done, waiting], 60.0)
    assert [m.id for m in claimed] == [waiting]
    assert await store.claim(pool, [waiting], 60.0) == []  # leased: not twice at once


async def test_insert_is_idempotent_by_id_and_by_client_ref(pool: aiopg.Pool, clean: None) -> None:
    first, second = IDS.next(), IDS.next()
    assert await store.insert(pool, [(first, message("r"))], 10.0) == {first: first}
    assert await store.insert(pool, [(first, message("r"))], 10.0) == {first: first}
    assert await store.insert(pool, [(second, message("r"))], 10.0) == {second: first}


async def due(pool: aiopg.Pool) -> list[tuple[int, Priority]]:
    """What the sweeper would enqueue now (without moving its cursor)."""
    before, _ = await store.sweep_horizon(pool, 0.0)
    batch = await store.read_sweep(pool, await store.sweep_cursor(pool), before, 1000)
    assert batch.now is not None or not batch.visits
    return [
        (v.message_id, v.priority)
        for v in batch.visits
        if batch.now is not None and decide(v, batch.now, 60.0, 60.0) is Action.ENQUEUE
    ]


async def test_due_messages_are_found_by_the_sweeper(pool: aiopg.Pool, clean: None) -> None:
    mid = IDS.next()
    await store.insert(pool, [(mid, message())], 0.0)
    assert (mid, Priority.BULK) in await due(pool)
    await store.mark_queued(pool, [mid])
    assert await due(pool) == []
    assert await store.forget_queue(pool) == 1
    assert (mid, Priority.BULK) in await due(pool)


async def test_a_late_mark_leaves_a_message_retried_since_the_xadd(
    pool: aiopg.Pool, clean: None
) -> None:
    """The XADD's entry was claimed and the retry it scheduled came due before the mark
    arrived: that entry is gone, so marking the message ``in_queue`` would strand it."""
    mid = IDS.next()
    await store.insert(pool, [(mid, message())], 10.0)
    added_before = (await fetch(pool, "SELECT now()"))[0][0]  # the enqueuer, before its XADD
    await store.claim(pool, [mid], 60.0)
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await store.schedule_retries(cur, [store.Retry(mid, 0.0, "throttled")])
    await store.mark_queued(pool, [mid], added_before)
    assert (mid, Priority.BULK) in await due(pool)  # out of the queue: the sweeper's


async def test_a_flush_between_xadd_and_mark_takes_the_mark_back(
    pool: aiopg.Pool, redis: aioredis.Redis, clean: None
) -> None:
    """Redis lost its data after the XADD, and a rebuild ran before the mark: the message
    must not stay marked ``in_queue`` for entries that no longer exist."""
    queue = RedisQueue(redis, "smsgw", "dispatch")
    assert await queue.claim_rebuild()
    mid = IDS.next()
    await store.insert(pool, [(mid, message())], 10.0)
    epoch = await queue.enqueue([(mid, Priority.BULK)])
    assert await queue.still_there(epoch)
    await redis.flushdb()
    assert await queue.claim_rebuild()  # the sweeper's rebuild: a new epoch
    await store.mark_queued(pool, [mid])
    assert not await queue.still_there(epoch)
    await store.unmark_queued(pool, [mid])
    assert [row[0] for row in await due(pool)] == [mid]  # the sweeper sees it again
