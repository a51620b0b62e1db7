"""Accepted chunks reach the queue whole; a full enqueue buffer leaves them to the sweeper."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import client_store
from gateway.adapters.pg import fetch
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.ids import IdGenerator
from gateway.core.message import Accepted, NewMessage, Priority
from gateway.services.submit import SubmitService
from gateway.settings import DispatchSettings, StoreSettings

IDS = IdGenerator(node=902)
QUEUED_SQL = "SELECT count(*) FILTER (WHERE in_queue), count(*) FROM messages WHERE id = ANY(%s)"


def messages(client_id: int, n: int, priority: Priority = Priority.BULK) -> list[NewMessage]:
    return [NewMessage(client_id, "+79211234567", "Shop", "hi", priority, "gsm7", 1)] * n


async def queued(pool: aiopg.Pool, accepted: Sequence[Accepted]) -> tuple[int, int]:
    [(in_queue, total)] = await fetch(pool, QUEUED_SQL, ([a.id for a in accepted],))
    return int(in_queue), int(total)


@pytest.fixture
async def service(
    pool: aiopg.Pool, redis: aioredis.Redis, clean: None
) -> AsyncIterator[SubmitService]:
    store = StoreSettings(batch_rows=500, pending_limit=600)  # 1200 messages to enqueue
    submit = SubmitService(pool, RedisQueue(redis, "enqueue-test", "g"), IDS, store,
                           DispatchSettings())  # fmt: skip
    writer = asyncio.create_task(submit.writer.run())
    yield submit
    await submit.writer.drained(5.0)
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)


async def client(pool: aiopg.Pool) -> int:
    return (await client_store.create(pool, f"c{IDS.next()}")).client.id


async def drain_enqueuer(submit: SubmitService) -> None:
    task = asyncio.create_task(submit.enqueuer.run())
    assert await submit.enqueuer.drained(5.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_every_request_is_enqueued_whatever_its_size(
    pool: aiopg.Pool, service: SubmitService
) -> None:
    owner = await client(pool)
    sizes = (500, 37, 1, 1, 61)
    results = await asyncio.gather(*(service.accept(messages(owner, n)) for n in sizes))
    await drain_enqueuer(service)
    for accepted, n in zip(results, sizes, strict=True):
        assert await queued(pool, accepted) == (n, n)
    assert service._enqueueing == 0


async def test_a_full_buffer_leaves_whole_chunks_to_the_sweeper(
    pool: aiopg.Pool, service: SubmitService, caplog: pytest.LogCaptureFixture
) -> None:
    """The buffer holds 1200 messages: with the enqueuer stopped, 2 × 500 fit, the next
    500 do not (logged, not in the queue: the sweeper's), and 200 more still fit."""
    owner = await client(pool)
    with caplog.at_level(logging.WARNING, "gateway.submit"):
        first = [await service.accept(messages(owner, 500)) for _ in range(3)]
        last = await service.accept(messages(owner, 200))
    assert [r.getMessage() for r in caplog.records] == [
        "enqueue buffer full; 500 messages left to the sweeper"
    ]
    assert service._enqueueing == 1200
    await drain_enqueuer(service)
    counts = [await queued(pool, accepted) for accepted in (*first, last)]
    assert counts == [(500, 500), (500, 500), (0, 500), (200, 200)]
    assert service._enqueueing == 0
