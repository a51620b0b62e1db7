"""The admin's stream consumer against real Redis and PostgreSQL: statuses out of order,
repeated, for rows not there yet, a consumer that dies with entries pending; replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import aiopg
import pytest
import redis.asyncio as aioredis

from admin.core.status_events import Parked
from admin.services.events_consumer import EventsConsumer, Streams, Tuning
from gateway.adapters import pg
from gateway.adapters.message_store import StatusEvent
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.inbound import Decided, Joined, OptAction, forward_payload
from gateway.core.lifecycle import State
from gateway.services.events import EventPublisher
from gateway.services.inbound import inbound_stream
from tests.admin.conftest import Stack
from tests.e2e.conftest import wait_for

PREFIX = "t"
CLIENT = 7
T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
PHONE = "+79161230001"


@pytest.fixture
async def consumer(
    admin_clean: None, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> EventsConsumer:
    return make_consumer(admin_db, redis, "c1")


def make_consumer(
    pool: aiopg.Pool, redis: aioredis.Redis, name: str, idle_ms: int = 60_000
) -> EventsConsumer:
    streams = Streams(RedisQueue(redis, PREFIX, "g").events_key, inbound_stream(PREFIX))
    tuning = Tuning(batch=100, block_ms=10, idle_ms=idle_ms, retry_s=0.05)
    return EventsConsumer(pool, redis, streams, timedelta(hours=72), name, tuning)


async def seed(pool: aiopg.Pool, message_ids: Sequence[int], phone: str = PHONE) -> int:
    """A contact, a campaign and its messages to that contact (accepted at T0)."""
    [(contact,)] = await pg.fetch(
        pool, "INSERT INTO admin.contacts (phone) VALUES (%s) RETURNING id", (phone,)
    )
    [(campaign,)] = await pg.fetch(
        pool,
        "INSERT INTO admin.campaigns (name, audience_id, sender, variants, schedule) "
        "VALUES ('c', 1, 'Shop', '[]', '{}') RETURNING id",
    )
    await insert_messages(pool, campaign, contact, message_ids)
    return int(campaign)


async def insert_messages(
    pool: aiopg.Pool, campaign: int, contact: int, ids: Sequence[int]
) -> None:
    await pg.execute(
        pool,
        "INSERT INTO admin.campaign_messages (message_id, campaign_id, run_id, contact_id, "
        "variant, accepted_at) SELECT id, %s, n + (SELECT count(*) FROM admin.campaign_messages), "
        "%s, 'A', %s "
        "FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(id, n)",
        (campaign, contact, T0, list(ids)),
    )


async def publish(redis: aioredis.Redis, *events: StatusEvent) -> None:
    await EventPublisher(RedisQueue(redis, PREFIX, "g"), 10_000).publish(list(events))


def ev(mid: int, state: State, minutes: float, **more: Any) -> StatusEvent:
    fields: dict[str, Any] = {"provider": None, "error_code": None} | more
    return StatusEvent(mid, CLIENT, state, T0 + timedelta(minutes=minutes), **fields)


async def drain(consumer: EventsConsumer) -> None:
    while await consumer.step(consumer.events, consumer.apply_statuses, 10):
        pass


async def row(pool: aiopg.Pool, mid: int) -> tuple[Any, ...]:
    [found] = await pg.fetch(
        pool,
        "SELECT status, submitted_at, delivered_at, final_at, provider, error_code, price, parts "
        "FROM admin.campaign_messages WHERE message_id = %s",
        (mid,),
    )
    return found


async def test_statuses_in_any_order_end_at_the_furthest(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    await seed(admin_db, [1, 2])
    await consumer.events.ensure_group()
    delivered = ev(1, State.DELIVERED, 2, provider="smsc", price=Decimal("2.5"), parts=2)
    await publish(redis, delivered)  # the receipt's batch published before the submit's
    await publish(redis, ev(1, State.SUBMITTED, 1, provider="smsc", price=Decimal("2.5"), parts=2))
    await publish(
        redis,
        ev(2, State.SUBMITTED, 1, provider="smsc"),
        ev(2, State.EXPIRED, 9, error_code="no_receipt"),
    )
    await drain(consumer)
    assert await row(admin_db, 1) == (
        "delivered", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=2), "smsc", None, Decimal("2.5"), 2,
    )  # fmt: skip
    expired = await row(admin_db, 2)
    assert (expired[0], expired[3], expired[5]) == (
        "expired",
        T0 + timedelta(minutes=9),
        "no_receipt",
    )


async def test_a_final_state_is_never_replaced_and_repeats_change_nothing(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    await seed(admin_db, [5])
    await consumer.events.ensure_group()
    await publish(redis, ev(5, State.UNDELIVERABLE, 3, provider="p", error_code="absent"))
    await drain(consumer)
    before = await row(admin_db, 5)
    updated = consumer.updated
    for _ in range(2):
        await publish(redis, ev(5, State.UNDELIVERABLE, 3, provider="p", error_code="absent"))
    await publish(redis, ev(5, State.DELIVERED, 4, provider="p"))
    await drain(consumer)
    assert await row(admin_db, 5) == before
    assert consumer.updated == updated  # not even rewritten


async def test_a_status_before_its_row_waits_for_it(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    campaign = await seed(admin_db, [10])
    consumer.parked = Parked(delays=(0.0, 0.0, 0.0))
    await consumer.events.ensure_group()
    await publish(redis, ev(10, State.SUBMITTED, 1), ev(11, State.DELIVERED, 2, provider="x"))
    await consumer.step(consumer.events, consumer.apply_statuses, 10)
    assert consumer.parked.ours == {CLIENT} and len(consumer.parked) == 1
    [(contact,)] = await pg.fetch(admin_db, "SELECT id FROM admin.contacts")
    await insert_messages(admin_db, campaign, contact, [11])  # the runner commits late
    await consumer.step(consumer.events, consumer.apply_statuses, 10)
    assert (await row(admin_db, 11))[0] == "delivered"
    assert len(consumer.parked) == 0


async def test_other_clients_events_are_dropped_without_a_lookup(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    await seed(admin_db, [20])
    await consumer.events.ensure_group()
    stranger = StatusEvent(99, CLIENT + 1, State.DELIVERED, T0, None, None)
    await publish(redis, ev(20, State.SUBMITTED, 1), stranger)
    await drain(consumer)
    assert len(consumer.parked) == 0 and (await row(admin_db, 20))[0] == "submitted"


async def test_entries_of_a_dead_consumer_are_taken_over(
    admin_clean: None, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    await seed(admin_db, [30])
    dead = make_consumer(admin_db, redis, "dead")
    await dead.events.ensure_group()
    await publish(redis, ev(30, State.DELIVERED, 2))
    assert len(await dead.events.read(100, 10)) == 1  # read, then killed before applying
    heir = make_consumer(admin_db, redis, "heir", idle_ms=0)
    await heir.step(heir.events, heir.apply_statuses, 10)
    assert (await row(admin_db, 30))[0] == "delivered"
    pending = await redis.xpending(heir.events.stream, "admin")
    assert pending["pending"] == 0


async def test_bad_entries_are_counted_and_acknowledged(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    await consumer.events.ensure_group()
    await redis.xadd(consumer.events.stream, {"v": "1", "events": "not json"})
    await redis.xadd(consumer.events.stream, {"v": "1", "events": json.dumps([{"id": "x"}])})
    await drain(consumer)
    assert consumer.unreadable == 2
    assert (await redis.xpending(consumer.events.stream, "admin"))["pending"] == 0


def inbound(inbound_id: int, phone: str, at: datetime, action: OptAction | None) -> str:
    message = Joined("smsc", phone, "Shop", "any text", 1, 1, at)
    return json.dumps(forward_payload(inbound_id, Decided(message, action, None), at))


async def test_replies_are_attributed_and_an_opt_out_unsubscribes(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    campaign = await seed(admin_db, [40])
    await publish(redis, ev(40, State.DELIVERED, 1))
    await consumer.events.ensure_group()
    await drain(consumer)
    await consumer.inbound.ensure_group()
    later = T0 + timedelta(hours=1)
    items = [
        inbound(501, PHONE, later, None),
        inbound(502, PHONE, later + timedelta(minutes=1), OptAction.OPT_OUT),
        inbound(503, "+79161239999", later, None),  # not a contact
    ]
    for _ in range(2):  # replayed: stored once
        await redis.xadd(
            consumer.inbound.stream, {"v": "1", "messages": "[" + ",".join(items) + "]"}
        )
    while await consumer.step(consumer.inbound, consumer.apply_replies, 10):
        pass
    rows = await pg.fetch(
        admin_db,
        "SELECT inbound_id, campaign_id, message_id, opt_out FROM admin.replies ORDER BY 1",
    )
    assert rows == [(501, campaign, 40, False), (502, campaign, 40, True)]
    [(subscribed,)] = await pg.fetch(admin_db, "SELECT subscribed FROM admin.contacts")
    assert subscribed is False and consumer.unsubscribed == 1


async def test_run_reads_both_streams_until_cancelled(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    await seed(admin_db, [50])
    task = asyncio.create_task(consumer.run())
    await publish(redis, ev(50, State.DELIVERED, 1))
    for _ in range(500):
        if (await row(admin_db, 50))[0] == "delivered":
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await row(admin_db, 50))[0] == "delivered"


async def test_statuses_from_the_real_gateway_carry_price_and_parts(full_stack: Stack) -> None:
    """Through the gateway over the SMSC simulator: the admin's consumer (started by the
    admin) brings each campaign message to delivered, with its provider, price and parts."""
    pool = full_stack.admin.pool
    texts = ["Скидка 20% на всё до воскресенья! " * 3, "Sale ends Sunday"]
    batch = [{"to": f"+7916123{n:04d}", "text": texts[n % 2]} for n in range(6)]
    headers = {"Authorization": f"Bearer {full_stack.api_key}"}
    url = f"http://127.0.0.1:{full_stack.gateway.settings.http.port}/v1/messages/batch"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"messages": batch}, headers=headers) as reply,
    ):
        assert reply.status == 202, await reply.text()
        accepted = (await reply.json())["accepted"]
    campaign = await seed(pool, [])
    [(contact,)] = await pg.fetch(pool, "SELECT id FROM admin.contacts")
    await insert_messages(pool, campaign, contact, [int(a["id"]) for a in accepted])

    async def all_delivered() -> list[tuple[Any, ...]]:
        rows = await pg.fetch(
            pool,
            "SELECT status, provider, price, parts, submitted_at IS NOT NULL FROM "
            "admin.campaign_messages ORDER BY message_id",
        )
        return rows if all(r[0] == "delivered" for r in rows) else []

    rows = await wait_for(all_delivered, within=60)
    assert {r[1] for r in rows} == {"sim"} and all(r[4] for r in rows)
    assert {(r[3], r[2]) for r in rows} == {(2, Decimal("0.70")), (1, Decimal("0.35"))}


async def test_the_consumer_outlives_redis_losing_its_data(
    consumer: EventsConsumer, admin_db: aiopg.Pool, redis: aioredis.Redis
) -> None:
    await seed(admin_db, [60, 61])
    task = asyncio.create_task(consumer.run())
    try:
        await publish(redis, ev(60, State.DELIVERED, 1))
        await wait_for(lambda: _status_is(admin_db, 60, "delivered"))
        await redis.flushdb()  # the stream and the group are gone
        await publish(redis, ev(61, State.DELIVERED, 1))
        await wait_for(lambda: _status_is(admin_db, 61, "delivered"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _status_is(pool: aiopg.Pool, mid: int, status: str) -> bool:
    return bool((await row(pool, mid))[0] == status)
