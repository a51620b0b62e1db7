"""Benchmark: the admin's events consumer applying gateway statuses to campaign messages.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB REDIS_URL=redis://127.0.0.1:6379/N \\
        python -m loadtest.bench_admin_events [--messages 50000] [--batch 20]

``--messages`` campaign messages (made in the server), then for each a ``submitted`` and a
``delivered`` event, plus as many events of another gateway client (not campaign
messages), all published through the gateway's own ``EventPublisher`` (500 per entry, as
its writers batch). The consumer then drains the stream ``--batch`` entries per step;
reported: events/s, the consumer's CPU seconds, and that every row ended delivered.
Truncates the campaign tables and flushes the Redis db: point it at scratch servers
(without the variables it starts embedded ones).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiopg
import redis.asyncio as aioredis

from admin.adapters import db
from admin.services.events_consumer import EventsConsumer, Streams, Tuning
from gateway.adapters import pg
from gateway.adapters.message_store import StatusEvent
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.lifecycle import State
from gateway.embedded import ServerUrls
from gateway.services.events import EventPublisher
from gateway.services.inbound import inbound_stream
from smsgw.runner import with_scratch_servers

PREFIX = "bench"
PER_ENTRY = 500


async def prepare(pool: aiopg.Pool, n: int) -> None:
    await pg.execute(pool, "TRUNCATE admin.campaigns RESTART IDENTITY CASCADE")
    [(campaign,)] = await pg.fetch(
        pool,
        "INSERT INTO admin.campaigns (name, audience_id, sender, variants, schedule) "
        "VALUES ('bench', 1, 'Shop', '[]', '{}') RETURNING id",
    )
    await pg.execute(
        pool,
        "INSERT INTO admin.campaign_messages (message_id, campaign_id, run_id, contact_id, "
        "variant) SELECT g, %s, 1, g, 'A' FROM generate_series(1, %s) g",
        (campaign, n),
    )
    await pg.execute(pool, "ANALYZE admin.campaign_messages")


async def publish(redis: aioredis.Redis, n: int) -> int:
    publisher = EventPublisher(RedisQueue(redis, PREFIX, "g"), 100 * n)
    at = datetime.now(UTC)
    waves = [(1, State.SUBMITTED, 0), (1, State.DELIVERED, 0), (2, State.DELIVERED, 10**12)]
    for client, state, offset in waves:
        for first in range(1, n + 1, PER_ENTRY):
            ids = range(first + offset, min(first + PER_ENTRY, n + 1) + offset)
            await publisher.publish(
                [StatusEvent(i, client, state, at, "sim", None, Decimal("0.35"), 1) for i in ids]
            )
    return 3 * n


async def bench(urls: ServerUrls, n: int, batch: int) -> None:
    redis = aioredis.from_url(urls.redis_url)
    await redis.flushdb()
    async with pg.open_pool(urls.database_url, 4) as pool:
        await pg.migrate(pool)
        await db.migrate(pool)
        await prepare(pool, n)
        events = await publish(redis, n)
        streams = Streams(RedisQueue(redis, PREFIX, "g").events_key, inbound_stream(PREFIX))
        tuning = Tuning(batch=batch, block_ms=10)
        consumer = EventsConsumer(pool, redis, streams, timedelta(hours=72), "bench", tuning)
        await consumer.events.ensure_group()
        wall, cpu = time.perf_counter(), time.process_time()
        while await consumer.step(consumer.events, consumer.apply_statuses, 10):
            pass
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows = await pg.fetch(
            pool, "SELECT status, count(*) FROM admin.campaign_messages GROUP BY 1"
        )
        print(
            f"{events} events ({2 * n} of campaign messages, {n} of another client) in "
            f"{wall:.2f} s: {events / wall:,.0f} events/s; consumer CPU {cpu:.2f} s "
            f"({cpu / events * 1e6:.1f} µs/event); rows {dict(rows)}; "
            f"parked {len(consumer.parked)}, dropped {consumer.parked.dropped}"
        )
        await pg.execute(pool, "TRUNCATE admin.campaigns RESTART IDENTITY CASCADE")
    await redis.flushdb()
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=4, help="stream entries per step")
    args = parser.parse_args()
    with_scratch_servers(lambda urls: bench(urls, args.messages, args.batch))


if __name__ == "__main__":
    main()
