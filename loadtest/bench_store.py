"""Micro-benchmark: batched message inserts (``message_store.insert_rows``) into PostgreSQL.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB python -m loadtest.bench_store 100000

Prints rows/s for batches of 1000, half the rows with a ``client_ref`` (the idempotency
path), and the PostgreSQL backend's CPU time per row (read from /proc: the server must run
on this machine), which a busy machine disturbs far less than the wall-clock rate.
Truncates ``messages`` in that database first: point it at a scratch database.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from gateway.adapters import message_store, pg
from gateway.core.ids import IdGenerator
from gateway.core.message import NewMessage, Priority

BATCH = 1000


def _rows(ids: IdGenerator, start: int) -> list[message_store.Row]:
    return [
        (
            ids.next(),
            NewMessage(
                1,
                f"+7921{(start + n) % 10_000_000:07d}",
                "Shop",
                "benchmark text",
                Priority.BULK,
                "gsm7",
                1,
                client_ref=f"b{start + n}" if n % 2 else None,
            ),
            None,
        )
        for n in range(BATCH)
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a local process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(dsn: str, total: int) -> tuple[float, float]:
    """Rows per second, and server CPU microseconds per row."""
    async with pg.open_pool(dsn, 1) as pool:
        await pg.migrate(pool)
        await pg.execute(pool, "TRUNCATE messages")
        tables = await pg.fetch(pool, "SELECT to_regclass('client_refs')")
        if tables[0][0] is not None:
            await pg.execute(pool, "TRUNCATE client_refs")
        ids = IdGenerator(node=1000)
        batches = [_rows(ids, n) for n in range(0, total, BATCH)]
        backend = (await pg.fetch(pool, "SELECT pg_backend_pid()"))[0][0]
        started, cpu = time.perf_counter(), cpu_seconds(backend)
        for rows in batches:
            async with pool.acquire() as conn, conn.cursor() as cur:
                await message_store.insert_rows(cur, rows, 10.0)
        wall, cpu = time.perf_counter() - started, cpu_seconds(backend) - cpu
        return total / wall, cpu / total * 1e6


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rate, cpu_us = asyncio.run(bench(os.environ["DATABASE_URL"], total))
    print(f"{total} rows in batches of {BATCH}: {rate:,.0f} rows/s, server CPU {cpu_us:.1f} µs/row")


if __name__ == "__main__":
    main()
