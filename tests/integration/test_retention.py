"""Day partitions, idempotency across days, roll-ups and retention on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import aiopg
import pytest

from gateway.adapters import message_store as store
from gateway.adapters import pg, retention_store
from gateway.adapters.pg import execute, fetch
from gateway.core.ids import IdGenerator
from gateway.core.lifecycle import State
from gateway.core.masking import mask_phone
from gateway.core.message import NewMessage, Priority
from gateway.core.retention import RetentionSettings, day_bounds, partition_day, partition_name
from gateway.embedded import ServerUrls
from gateway.services.retention import Retention, daily_stats

OLD_DAY = date(2026, 1, 5)  # far outside any window: its partition is the test's own
STRAY_DAY = date(2026, 1, 6)  # no partition: its rows live in DEFAULT
FAR_DAY = date(2031, 3, 3)  # a day no test run reaches


def ids_on(day: date, node: int = 901) -> IdGenerator:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
    return IdGenerator(node, clock=lambda: noon)


def message(ref: str | None = None, to: str = "+79211234567") -> NewMessage:
    return NewMessage(1, to, "Shop", "old text", Priority.BULK, "gsm7", 1, client_ref=ref)


async def partition_of(pool: aiopg.Pool, message_id: int) -> str:
    rows = await fetch(
        pool, "SELECT tableoid::regclass::text FROM messages WHERE id = %s", (message_id,)
    )
    return str(rows[0][0])


async def drop_if_there(pool: aiopg.Pool, *days: date) -> None:
    for day in days:
        await execute(pool, f"DROP TABLE IF EXISTS {partition_name(day)}")


@pytest.fixture
async def own_days(pool: aiopg.Pool, clean: None) -> AsyncIterator[None]:
    await drop_if_there(pool, OLD_DAY, FAR_DAY)
    yield
    await drop_if_there(pool, OLD_DAY, FAR_DAY)


async def test_partition_bounds_in_the_database_are_the_pure_functions(pool: aiopg.Pool) -> None:
    keep_all = RetentionSettings(days=0, inbound_days=0)
    await Retention(keep_all, pool).run_once()  # only makes the partitions ahead
    rows = await fetch(
        pool,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'messages'::regclass",
    )
    days = {partition_day(name): bound for name, bound in rows}
    assert days.pop(None) == "DEFAULT"
    today = datetime.now(UTC).date()
    assert today in days and today + timedelta(days=7) in days
    for day, bound in days.items():
        assert day is not None
        low, high = day_bounds(day)
        assert bound == f"FOR VALUES FROM ('{low}') TO ('{high}')"


async def test_a_client_ref_is_one_message_across_days(pool: aiopg.Pool, own_days: None) -> None:
    first = ids_on(OLD_DAY).next()
    second = IdGenerator(902).next()  # today
    assert await store.insert(pool, [(first, message("r"))], 10.0) == {first: first}
    assert await store.insert(pool, [(second, message("r"))], 10.0) == {second: first}
    assert await store.insert(pool, [(first, message("r"))], 10.0) == {first: first}  # a retry
    assert (await fetch(pool, "SELECT count(*) FROM messages"))[0][0] == 1


async def test_a_client_ref_raced_from_many_connections_is_one_message(
    pool: aiopg.Pool, own_days: None
) -> None:
    """Invariant 6 under contention: ten inserts of one key at once, half of them with
    ids of another day (another partition), store one message and all return its id."""
    ids = [
        ids_on(OLD_DAY, 910 + n).next() if n % 2 else IdGenerator(910 + n).next() for n in range(10)
    ]
    results = await asyncio.gather(*(store.insert(pool, [(i, message("race"))], 10.0) for i in ids))
    stored = {result[i] for result, i in zip(results, ids, strict=True)}
    assert len(stored) == 1 and stored <= set(ids)
    assert (await fetch(pool, "SELECT count(*) FROM messages"))[0][0] == 1


async def test_a_new_partition_takes_its_rows_from_default(
    pool: aiopg.Pool, own_days: None
) -> None:
    mid = ids_on(FAR_DAY).next()
    await store.insert(pool, [(mid, message())], 10.0)
    assert await partition_of(pool, mid) == "messages_default"
    await pg.execute(pool, "UPDATE messages SET sweep_at = now() - interval '1 day'")
    assert await retention_store.create_partition(pool, FAR_DAY) == 1
    assert await partition_of(pool, mid) == partition_name(FAR_DAY)
    assert FAR_DAY in await retention_store.partitions(pool)
    # A walk blocked by the ATTACH saw it in neither table: it is stamped for a visit anew.
    [(recent,)] = await fetch(
        pool, "SELECT sweep_at > now() - interval '1 minute' FROM messages WHERE id = %s", (mid,)
    )
    assert recent


async def transaction(pool: aiopg.Pool, func, *args):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        return await func(cur, *args)


async def old_traffic(pool: aiopg.Pool) -> tuple[list[int], int]:
    """Two delivered messages on OLD_DAY (own partition), one queued on STRAY_DAY (DEFAULT)."""
    await retention_store.create_partition(pool, OLD_DAY)
    ids = ids_on(OLD_DAY)
    old = [ids.next(), ids.next()]
    stray = ids_on(STRAY_DAY).next()
    rows = [(old[0], message("a")), (old[1], message("b", "+79210000001")), (stray, message())]
    await store.insert(pool, rows, 10.0)
    submitted = [store.Submitted(m, "sim", Decimal("0.35"), (f"p{m}",), (f"p{m}",)) for m in old]
    await transaction(pool, store.record_submitted, submitted, [])
    finals = [store.FinalUpdate(m, State.DELIVERED) for m in old]
    await transaction(pool, store.record_final, finals)
    return old, stray


async def test_retention_rolls_up_drops_and_scrubs(pool: aiopg.Pool, own_days: None) -> None:
    _, stray = await old_traffic(pool)
    fresh = IdGenerator(903).next()
    await store.insert(pool, [(fresh, message("c"))], 10.0)
    retention = Retention(RetentionSettings(days=90, batch=1), pool)  # batch 1: loops run
    report = await retention.run_once()
    assert report.dropped == [OLD_DAY.isoformat()]
    assert report.counts["messages_deleted"] == 2 and report.counts["client_refs_deleted"] == 2
    assert report.counts["message_parts_deleted"] == 2 and report.counts["messages_scrubbed"] == 1
    assert OLD_DAY not in await retention_store.partitions(pool)
    stats = [(1, "sim", int(Priority.BULK), int(State.DELIVERED), 2, 2, Decimal("0.700000"))]
    assert await daily_stats(pool, OLD_DAY.isoformat()) == stats
    left = await fetch(pool, "SELECT id, destination, body FROM messages ORDER BY id")
    assert left == [(stray, mask_phone("+79211234567"), ""), (fresh, "+79211234567", "old text")]
    again = await retention.run_once()  # idempotent: nothing more, aggregates kept
    assert again.dropped == [] and await daily_stats(pool, OLD_DAY.isoformat()) == stats
    audit = await fetch(pool, "SELECT action, actor FROM audit_log ORDER BY id")
    assert audit == [("retention", "maintenance")]


async def test_days_zero_keeps_everything(pool: aiopg.Pool, own_days: None) -> None:
    old, stray = await old_traffic(pool)
    report = await Retention(RetentionSettings(days=0, inbound_days=0), pool).run_once()
    assert report.dropped == [] and OLD_DAY in await retention_store.partitions(pool)
    bodies = await fetch(pool, "SELECT body FROM messages WHERE id = ANY(%s)", ([*old, stray],))
    assert [b for (b,) in bodies] == ["old text"] * 3


async def test_old_inbound_messages_go(pool: aiopg.Pool, own_days: None) -> None:
    old, new = ids_on(OLD_DAY).next(), IdGenerator(904).next()
    for mid in (old, new):
        await execute(
            pool,
            "INSERT INTO inbound_messages (id, provider, source, destination, body, parts, total,"
            " received_at) VALUES (%s, 'sim', '+79211234567', '1234', 'hi', 1, 1, now())",
            (mid,),
        )
    report = await Retention(RetentionSettings(inbound_days=30), pool).run_once()
    assert report.counts["inbound_messages_deleted"] == 1
    assert await fetch(pool, "SELECT id FROM inbound_messages") == [(new,)]


@pytest.fixture
async def scratch_db(server_urls: ServerUrls) -> AsyncIterator[str]:
    """A schema of its own in the test database (first on the search path), so that the
    migrations run there from scratch; faster than a database of its own."""
    name = f"scratch_{os.getpid()}"
    async with pg.open_pool(server_urls.database_url, 1) as admin:
        await execute(admin, f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await execute(admin, f"CREATE SCHEMA {name}")
        try:
            yield f"{server_urls.database_url}?options=-csearch_path%3D{name}"
        finally:
            await execute(admin, f"DROP SCHEMA IF EXISTS {name} CASCADE")


async def test_the_migration_keeps_existing_messages(scratch_db: str) -> None:
    async with pg.open_pool(scratch_db, 2) as pool:
        for name, sql in pg.available_migrations():
            if name < "0006":
                await execute(pool, sql)
        yesterday = _today() - timedelta(days=1)  # every day since gets a partition: few
        rows = [(ids_on(yesterday).next(), "a"), (IdGenerator(905).next(), None)]
        for mid, ref in rows:
            await execute(
                pool,
                "INSERT INTO messages (id, client_id, client_ref, destination, sender, body,"
                " encoding, parts, priority, due_at) VALUES"
                " (%s, 1, %s, '+79211234567', 'Shop', 'kept', 'gsm7', 1, 3, now())",
                (mid, ref),
            )
        await execute(pool, "CREATE TABLE schema_migrations (name text PRIMARY KEY)")
        await execute(
            pool,
            "INSERT INTO schema_migrations SELECT unnest(%s::text[])",
            ([n for n, _ in pg.available_migrations() if n < "0006"],),
        )
        assert [n for n in await pg.migrate(pool) if n.startswith("0006")] == ["0006_retention"]
        moved = await fetch(pool, "SELECT id, tableoid::regclass::text FROM messages ORDER BY id")
        assert [p for _, p in moved] == [partition_name(yesterday), partition_name(_today())]
        again = IdGenerator(906).next()  # the old client_ref still dedupes
        assert await store.insert(pool, [(again, message("a"))], 10.0) == {again: rows[0][0]}
        assert (await fetch(pool, "SELECT message_id FROM client_refs"))[0][0] == rows[0][0]


def _today() -> date:
    return datetime.now(UTC).date()
