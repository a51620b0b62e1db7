"""Balances, holds, the ledger and the client limits against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import billing_store, client_store
from gateway.adapters import message_store as store
from gateway.adapters.billing_store import ClientLimiter
from gateway.adapters.client_store import Terms
from gateway.adapters.pg import fetch
from gateway.adapters.redis_queue import RedisQueue
from gateway.core import billing
from gateway.core.billing import Account, Limits
from gateway.core.errors import InsufficientFunds, QuotaExceeded, RateLimited
from gateway.core.ids import IdGenerator
from gateway.core.lifecycle import State
from gateway.core.message import NewMessage, Priority
from gateway.services.submit import SubmitService, per_part
from gateway.settings import DispatchSettings, StoreSettings

IDS = IdGenerator(node=901)
D = Decimal


def message(client_id: int, ref: str | None = None, parts: int = 1) -> NewMessage:
    return NewMessage(client_id, "+79211234567", "Shop", "hi", Priority.BULK, "gsm7", parts, ref)


async def billed(pool: aiopg.Pool, balance: str, credit: str = "0", **limits: Any) -> int:
    terms = Terms(D(balance), D(credit), **limits)
    return (await client_store.create(pool, f"c{IDS.next()}", terms=terms)).client.id


async def held_message(pool: aiopg.Pool, client_id: int, hold: str) -> int:
    """What the accept writer does for one accepted message of a billed client."""
    mid = IDS.next()
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await store.insert_rows(cur, [(mid, message(client_id), D(hold))], 10.0)
        await billing_store.post(cur, [billing.hold(client_id, mid, D(hold))])
    return mid


async def in_transaction(pool: aiopg.Pool, func: Any, *args: Any) -> Any:
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        return await func(cur, *args)


async def audited(pool: aiopg.Pool, client_id: int) -> Account:
    """The account, after checking that the ledger adds up to its balance."""
    account = await billing_store.account(pool, client_id)
    assert account is not None
    [(total,)] = await fetch(
        pool, "SELECT sum(amount) FROM ledger WHERE client_id = %s", (client_id,)
    )
    assert total == account.balance
    return account


async def test_a_hold_is_settled_at_the_cheaper_price(pool: aiopg.Pool, clean: None) -> None:
    client = await billed(pool, "10")
    mid = await held_message(pool, client, "0.50")
    assert await audited(pool, client) == Account(D("9.5"), D(0), D("0.5"))
    submitted = store.Submitted(mid, "sim", D("0.35"), ("p1",), ("p1",))
    await in_transaction(pool, store.record_submitted, [submitted], [])
    assert await audited(pool, client) == Account(D("9.65"), D(0), D(0))
    # Delivered later: the price was charged at submission; nothing moves.
    await in_transaction(pool, store.record_final, [store.FinalUpdate(mid, State.DELIVERED)])
    assert await audited(pool, client) == Account(D("9.65"), D(0), D(0))
    reasons = await fetch(
        pool, "SELECT reason FROM ledger WHERE message_id = %s ORDER BY id", (mid,)
    )
    assert [r[0] for r in reasons] == ["hold", "settle"]


async def test_a_failed_message_gets_its_whole_hold_back_once(
    pool: aiopg.Pool, clean: None
) -> None:
    client = await billed(pool, "2")
    failed, expired = (
        await held_message(pool, client, "0.70"),
        await held_message(pool, client, "1"),
    )
    finals = [
        store.FinalUpdate(failed, State.FAILED, "no_route"),
        store.FinalUpdate(expired, State.EXPIRED),
    ]
    await in_transaction(pool, store.record_final, finals)
    assert await audited(pool, client) == Account(D("2"), D(0), D(0))
    await in_transaction(pool, store.record_final, [store.FinalUpdate(failed, State.REJECTED)])
    assert await audited(pool, client) == Account(D("2"), D(0), D(0))


async def test_a_price_above_the_hold_is_charged(pool: aiopg.Pool, clean: None) -> None:
    client = await billed(pool, "1")
    mid = await held_message(pool, client, "0.30")
    submitted = store.Submitted(mid, "sim", D("0.45"), ("p2",), ("p2",))
    await in_transaction(pool, store.record_submitted, [submitted], [])
    assert (await audited(pool, client)).balance == D("0.55")


async def test_messages_of_clients_not_billed_hold_nothing(pool: aiopg.Pool, clean: None) -> None:
    client = (await client_store.create(pool, "free")).client.id
    mid = IDS.next()
    await store.insert(pool, [(mid, message(client))], 10.0)
    await in_transaction(pool, store.record_final, [store.FinalUpdate(mid, State.FAILED)])
    assert await billing_store.account(pool, client) is None
    assert await fetch(pool, "SELECT * FROM ledger") == []


async def test_topup_starts_billing_and_is_on_the_ledger(pool: aiopg.Pool, clean: None) -> None:
    client = (await client_store.create(pool, "later")).client.id
    assert await billing_store.topup(pool, client, D("5.25")) == Account(D("5.25"))
    assert await billing_store.topup(pool, client, D("-0.25")) == Account(D("5"))
    assert (await audited(pool, client)).balance == D("5")
    assert await billing_store.topup(pool, 999_999, D("1")) is None


# --- the accept writer: decide, insert and debit in one transaction ---------------------
@pytest.fixture
async def service(
    pool: aiopg.Pool, redis: aioredis.Redis, clean: None
) -> AsyncIterator[SubmitService]:
    submit = SubmitService(
        pool,
        RedisQueue(redis, "billing-test", "g"),
        IDS,
        StoreSettings(),
        DispatchSettings(),
        quoter=per_part(D("0.25")),
    )
    tasks = [asyncio.create_task(submit.writer.run()), asyncio.create_task(submit.enqueuer.run())]
    yield submit
    # As Gateway.stop: flush first. Cancelling aiopg mid-query can leave the task hanging.
    await submit.writer.drained(5.0)
    await submit.enqueuer.drained(5.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_concurrent_requests_never_overdraw(pool: aiopg.Pool, service: SubmitService) -> None:
    """40 concurrent requests of 2 parts × 0.25 against 5.00: exactly 10 pass."""
    client = await billed(pool, "5")
    results = await asyncio.gather(
        *(service.accept([message(client, parts=2)]) for _ in range(40)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, InsufficientFunds)]
    assert len(refused) == 30 and len(results) - len(refused) == 10
    assert await audited(pool, client) == Account(D(0), D(0), D(5))
    [(rows,)] = await fetch(pool, "SELECT count(*) FROM messages WHERE client_id = %s", (client,))
    assert rows == 10


async def test_a_refused_request_leaves_nothing_and_a_repeat_is_free(
    pool: aiopg.Pool, service: SubmitService
) -> None:
    client = await billed(pool, "0.50", credit="0.25")
    first = await service.accept([message(client, "a"), message(client, "b")])
    with pytest.raises(InsufficientFunds) as refused:
        await service.accept([message(client, "c"), message(client, "d")])
    assert refused.value.needed == D("0.5") and refused.value.available == D("0.25")
    again = await service.accept([message(client, "a"), message(client, "b")])
    assert [a.id for a in again] == [a.id for a in first] and all(a.duplicate for a in again)
    assert (await audited(pool, client)).balance == D(0)
    [(rows,)] = await fetch(pool, "SELECT count(*) FROM messages WHERE client_id = %s", (client,))
    assert rows == 2


# --- limits in Redis ---------------------------------------------------------------------
@pytest.fixture
async def limiter(redis: aioredis.Redis, clean: None) -> ClientLimiter:
    return ClientLimiter(redis, "billing-test")


async def test_tps_takes_a_burst_of_one_second_then_refuses(limiter: ClientLimiter) -> None:
    limits = Limits(tps=10)
    await limiter.admit(1, limits, 6)
    taken = await limiter.admit(1, limits, 4)
    with pytest.raises(RateLimited) as over:
        await limiter.admit(1, limits, 1)
    assert 0 < over.value.retry_after <= 0.1 + 0.05
    await limiter.give_back(taken, 4)
    await limiter.admit(1, limits, 4)


async def test_a_batch_larger_than_the_tps_passes_once_and_leaves_a_debt(
    limiter: ClientLimiter,
) -> None:
    limits = Limits(tps=100)
    await limiter.admit(2, limits, 500)
    with pytest.raises(RateLimited) as over:
        await limiter.admit(2, limits, 1)
    assert 3.9 < over.value.retry_after <= 4.01  # 400 in debt + 1, at 100/s


async def test_the_daily_quota_counts_messages_and_gives_back(limiter: ClientLimiter) -> None:
    limits = Limits(daily_quota=10)
    taken = await limiter.admit(3, limits, 7)
    with pytest.raises(QuotaExceeded) as over:
        await limiter.admit(3, limits, 4)
    assert 0 < over.value.retry_after <= 86400
    assert await limiter.used_today(3) == 7
    await limiter.give_back(taken, 2, tokens=False)
    await limiter.admit(3, limits, 5)
    assert await limiter.used_today(3) == 10


async def test_limits_are_per_client(limiter: ClientLimiter) -> None:
    await limiter.admit(4, Limits(tps=1, daily_quota=1), 1)
    await limiter.admit(5, Limits(tps=1, daily_quota=1), 1)
    assert await limiter.used_today(6) == 0
