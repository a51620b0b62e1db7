"""PostgreSQL connection pool (aiopg) and versioned migrations.

Migrations are ``NNNN_name.sql`` files applied in order, each in its own transaction,
under an advisory lock so that several processes starting at once apply them once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import aiopg

log = logging.getLogger("gateway.store")

MIGRATIONS_PACKAGE = "gateway.adapters.migrations"
_LOCK_ID = 0x5357_4757  # "SMGW"
# The sweeper waits for the open transactions of connections so named (message_store.py);
# long read-only work (the admin's exports) names itself otherwise.
APPLICATION_NAME = "smsgw"


def _untie_closed_cursors() -> None:
    """aiopg's ``Cursor`` and its ``Transaction`` point at each other, so every cursor is
    a reference cycle, and with it psycopg2's cursor: the last query (hundreds of KB for
    a 1,000-row INSERT) and its result, in C memory. Only a full collection frees them,
    rare under ``smsgw run``'s thresholds: the API process grew ~200 bytes per accepted
    message (332 MB after a 1,000,000-message intake; docs/benchmarks.md). Closing a
    cursor now also cuts the transaction's way back, so it is freed at once."""
    close = aiopg.Cursor.close

    def close_and_untie(cursor: aiopg.Cursor) -> None:
        close(cursor)
        cursor._transaction._cursor = None  # type: ignore[assignment]  # unused once closed

    aiopg.Cursor.close = close_and_untie  # type: ignore[method-assign,assignment]


_untie_closed_cursors()


@asynccontextmanager
async def open_pool(
    dsn: str, size: int, application_name: str = APPLICATION_NAME
) -> AsyncIterator[aiopg.Pool]:
    pool = await aiopg.create_pool(
        dsn, minsize=1, maxsize=size, timeout=30, application_name=application_name
    )
    try:
        yield pool
    finally:
        await close_pool(pool)


async def close_pool(pool: aiopg.Pool, within: float = 5.0) -> None:
    """Close, falling back to terminate: a connection whose query was cancelled mid-way
    may never be released, and shutdown must not wait for it for ever."""
    pool.close()
    try:
        async with asyncio.timeout(within):
            await pool.wait_closed()
    except TimeoutError:
        log.warning("database pool not closed in %g s; terminating its connections", within)
        pool.terminate()
        await pool.wait_closed()


async def fetch(pool: aiopg.Pool, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall()) if cur.description else []


async def execute(pool: aiopg.Pool, sql: str, params: Sequence[Any] = ()) -> int:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, params)
        return int(cur.rowcount)


def available_migrations(package: str = MIGRATIONS_PACKAGE) -> list[tuple[str, str]]:
    files = resources.files(package)
    names = sorted(f.name for f in files.iterdir() if f.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), files.joinpath(name).read_text()) for name in names]


async def migrate(
    pool: aiopg.Pool, package: str = MIGRATIONS_PACKAGE, table: str = "schema_migrations"
) -> list[str]:
    """Apply the migrations of ``package`` not yet applied (booked in ``table``, a constant
    of the caller's); returns their names."""
    applied: list[str] = []
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            await cur.execute(
                f"CREATE TABLE IF NOT EXISTS {table} "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            await cur.execute(f"SELECT name FROM {table}")
            done = {row[0] for row in await cur.fetchall()}
            for name, sql in available_migrations(package):
                if name not in done:
                    await _apply(cur, name, sql, table)
                    applied.append(name)
        finally:
            await cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied


async def _apply(cur: Any, name: str, sql: str, table: str) -> None:
    log.info("applying migration %s", name)
    async with cur.begin():
        await cur.execute(sql)
        await cur.execute(f"INSERT INTO {table} (name) VALUES (%s)", (name,))
