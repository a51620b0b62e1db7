"""Retention in PostgreSQL: day partitions of ``messages``, daily aggregates, scrubbing.

The decisions are in ``gateway/core/retention.py``; these functions carry them out, each in
bounded steps so that no statement holds locks for long:

- a new partition is made as a plain table, filled with any rows of its day that fell into
  the DEFAULT partition meanwhile, then attached (a DEFAULT partition holding rows of the
  new range would make a plain ``PARTITION OF`` fail);
- a day's partition is dropped in the transaction that rolls it up into ``daily_stats``
  for the last time, after the rows of other tables that point into it went in batches;
- what cannot be dropped is scrubbed in id-ordered batches: text emptied, number masked.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import aiopg

from gateway.adapters.pg import fetch
from gateway.core.masking import mask_phone
from gateway.core.retention import (
    DEFAULT_PARTITION,
    day_bounds,
    partition_day,
    partition_name,
)

# DROP (and ATTACH's lock on DEFAULT) wait for the hot path's transactions and make new
# ones queue behind them: give up after a while and let the next run try again.
LOCK_TIMEOUT_SQL = "SET LOCAL lock_timeout = '5s'"

PARTITIONS_SQL = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'messages'::regclass
"""


async def partitions(pool: aiopg.Pool) -> list[date]:
    """The days that have a partition (the DEFAULT one is not a day)."""
    days = (partition_day(row[0]) for row in await fetch(pool, PARTITIONS_SQL))
    return sorted(d for d in days if d is not None)


# Room on each page for the new versions of its rows: the updates of a message are HOT
# (migration 0009), and a HOT update needs space on the row's own page.
FILLFACTOR = 50


async def create_partition(pool: aiopg.Pool, day: date) -> int:
    """Make ``day``'s partition; returns how many rows it took over from the DEFAULT one."""
    low, high = day_bounds(day)
    name = partition_name(day)
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await cur.execute(LOCK_TIMEOUT_SQL)
        # Rows routed to DEFAULT meanwhile would make the ATTACH fail: they wait instead.
        await cur.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN SHARE ROW EXCLUSIVE MODE")
        await cur.execute(
            f"CREATE TABLE {name} (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            f" WITH (fillfactor = {FILLFACTOR})"
        )
        await cur.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE id >= %s AND id < %s "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            (low, high),
        )
        moved = int(cur.rowcount)
        # A sweep planned before the ATTACH and blocked by it sees the moved rows in neither
        # table: stamped with this transaction's start, they lie beyond the sweeper's cursor.
        await cur.execute(f"UPDATE {name} SET sweep_at = now() WHERE state < 40")
        await cur.execute(
            f"ALTER TABLE messages ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            (low, high),
        )
    return moved


ROLLUP_SQL = """
INSERT INTO daily_stats (day, client_id, provider, priority, state, messages, parts, cost)
SELECT %s, client_id, COALESCE(provider, ''), priority, state, count(*), sum(parts),
       COALESCE(sum(price), 0)
FROM messages WHERE id >= %s AND id < %s
GROUP BY client_id, COALESCE(provider, ''), priority, state
"""


async def rollup(cur: Any, day: date) -> int:
    """Inside a transaction: recompute ``day``'s aggregates whole (idempotent: a state that
    moved on since the last roll-up leaves no stale row). Returns the rows written."""
    low, high = day_bounds(day)
    await cur.execute("DELETE FROM daily_stats WHERE day = %s", (day,))
    await cur.execute(ROLLUP_SQL, (day, low, high))
    return int(cur.rowcount)


async def rollup_day(pool: aiopg.Pool, day: date) -> int:
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        return await rollup(cur, day)


async def drop_partition(pool: aiopg.Pool, day: date, batch: int) -> dict[str, int]:
    """Delete what points into ``day`` (batched), then roll it up and drop it at once."""
    low, high = day_bounds(day)
    counts = {
        table: await delete_by_message(pool, table, low, high, batch)
        for table in ("client_refs", "message_parts", "webhook_outbox")
    }
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await rollup(cur, day)
        await cur.execute(f"SELECT count(*) FROM {partition_name(day)}")
        counts["messages"] = int((await cur.fetchone())[0])
        await cur.execute(LOCK_TIMEOUT_SQL)
        await cur.execute(f"DROP TABLE {partition_name(day)}")
    return counts


async def delete_by_message(pool: aiopg.Pool, table: str, low: int, high: int, batch: int) -> int:
    """Delete ``table``'s rows whose message_id is in [low, high), ``batch`` at a time."""
    sql = (
        f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} "
        f"WHERE message_id >= %s AND message_id < %s LIMIT %s)"
    )
    return await _repeat(pool, sql, (low, high, batch), batch)


async def _repeat(pool: aiopg.Pool, sql: str, params: tuple[Any, ...], batch: int) -> int:
    """Run a bounded DELETE/UPDATE until it touches fewer than ``batch`` rows."""
    total = 0
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, params)
            done = int(cur.rowcount)
        total += done
        if done < batch:
            return total


SCRUB_PICK_SQL = """
SELECT id, destination FROM messages
WHERE id > %s AND id < %s AND (body <> '' OR position('*' IN destination) = 0)
ORDER BY id LIMIT %s FOR UPDATE
"""

SCRUB_SQL = """
UPDATE messages m SET body = '', destination = u.masked
FROM unnest(%s::bigint[], %s::text[]) AS u(id, masked) WHERE m.id = u.id
"""


async def scrub_messages(pool: aiopg.Pool, below_id: int, batch: int) -> int:
    """Empty the text and mask the number of every message with an id below ``below_id``
    (those the partition drop could not take: the day straddling the limit, DEFAULT)."""
    after, total = -1, 0
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            await cur.execute(SCRUB_PICK_SQL, (after, below_id, batch))
            rows = await cur.fetchall()
            if rows:
                masked = [mask_phone(dest) for _, dest in rows]
                await cur.execute(SCRUB_SQL, ([r[0] for r in rows], masked))
        total += len(rows)
        if len(rows) < batch:
            return total
        after = rows[-1][0]


async def delete_older(
    pool: aiopg.Pool, table: str, order_key: str, where: str, params: tuple[Any, ...], batch: int
) -> int:
    """Delete ``table``'s rows matching ``where``, ``batch`` at a time in ``order_key`` order."""
    sql = (
        f"DELETE FROM {table} WHERE {order_key} IN (SELECT {order_key} FROM {table} "
        f"WHERE {where} ORDER BY {order_key} LIMIT %s)"
    )
    return await _repeat(pool, sql, (*params, batch), batch)


async def table_exists(pool: aiopg.Pool, name: str) -> bool:
    return (await fetch(pool, "SELECT to_regclass(%s) IS NOT NULL", (name,)))[0][0] is True


async def audit(pool: aiopg.Pool, action: str, actor: str, counts: dict[str, int]) -> None:
    await fetch(
        pool,
        "INSERT INTO audit_log (action, actor, counts) VALUES (%s, %s, %s::jsonb)",
        (action, actor, json.dumps(counts, sort_keys=True)),
    )
