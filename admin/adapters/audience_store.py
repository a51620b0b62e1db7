"""Audiences (saved queries) and the contacts they select.

``where`` is always a ``SqlWhere`` from ``admin.core.audience.compile_where`` (or one of
its constants): its SQL is built from the whitelist and holds no value, so it is the one
piece of SQL text pasted into these statements; the values travel as parameters.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from datetime import datetime

import aiopg
import psycopg2.errors

from admin.adapters.contact_store import SELECT_COLUMNS, ContactRow, contact_row
from admin.core.audience import AudienceQuery, SqlWhere, parse_query, query_to_json
from gateway.adapters.failures import raise_if_cancelling
from gateway.adapters.pg import execute, fetch


class DuplicateName(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Audience:
    id: int
    name: str
    query: AudienceQuery
    updated_at: datetime | None = None


def _audience(row: tuple[object, ...]) -> Audience:
    data = row[2] if isinstance(row[2], dict) else json.loads(str(row[2]))
    updated = row[3] if isinstance(row[3], datetime) else None
    return Audience(int(str(row[0])), str(row[1]), parse_query(data), updated)


async def get_audience(pool: aiopg.Pool, audience_id: int) -> Audience | None:
    rows = await fetch(
        pool, "SELECT id, name, query, updated_at FROM admin.audiences WHERE id = %s",
        (audience_id,),
    )  # fmt: skip
    return _audience(rows[0]) if rows else None


async def list_audiences(pool: aiopg.Pool) -> list[Audience]:
    rows = await fetch(
        pool, "SELECT id, name, query, updated_at FROM admin.audiences ORDER BY name"
    )
    return [_audience(row) for row in rows]


async def create_audience(
    pool: aiopg.Pool, name: str, query: AudienceQuery, created_by: int | None
) -> int:
    sql = "INSERT INTO admin.audiences (name, query, created_by) VALUES (%s, %s, %s) RETURNING id"
    try:
        rows = await fetch(pool, sql, (name, json.dumps(query_to_json(query)), created_by))
    except psycopg2.errors.UniqueViolation:
        raise DuplicateName(name) from None
    return int(rows[0][0])


async def update_audience(
    pool: aiopg.Pool, audience_id: int, name: str, query: AudienceQuery
) -> bool:
    sql = "UPDATE admin.audiences SET name = %s, query = %s, updated_at = now() WHERE id = %s"
    try:
        return await execute(pool, sql, (name, json.dumps(query_to_json(query)), audience_id)) == 1
    except psycopg2.errors.UniqueViolation:
        raise DuplicateName(name) from None


async def delete_audience(pool: aiopg.Pool, audience_id: int) -> bool:
    return await execute(pool, "DELETE FROM admin.audiences WHERE id = %s", (audience_id,)) == 1


# ---- the contacts an audience selects ------------------------------------------------------


class TooSlow(RuntimeError):
    """The count ran past its time limit (a query too broad for the live preview)."""


async def count_contacts(pool: aiopg.Pool, where: SqlWhere, within_ms: int | None = None) -> int:
    """The contacts ``where`` selects; with ``within_ms``, TooSlow past that time."""
    sql = f"SELECT count(*) FROM admin.contacts c WHERE {where.sql}"
    if within_ms is None:
        return int((await fetch(pool, sql, where.params))[0][0])
    # The server's own statement_timeout: a client-side timeout would only drop the
    # connection and leave the server counting on. aiopg reports the server's cancel as
    # CancelledError: it is ours unless this task is itself being cancelled.
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await cur.execute("SELECT set_config('statement_timeout', %s, true)", (f"{within_ms}ms",))
        try:
            await cur.execute(sql, where.params)
        except asyncio.CancelledError:
            raise_if_cancelling()
            raise TooSlow(f"no count within {within_ms} ms") from None
        return int((await cur.fetchone())[0])


async def iter_contacts(
    pool: aiopg.Pool, where: SqlWhere, after_id: int, limit: int
) -> list[ContactRow]:
    """The next ``limit`` contacts with id > ``after_id``, by id (keyset pagination)."""
    sql = (
        f"SELECT {SELECT_COLUMNS} FROM admin.contacts c "
        f"WHERE c.id > %s AND ({where.sql}) ORDER BY c.id LIMIT %s"
    )
    rows = await fetch(pool, sql, (after_id, *where.params, limit))
    return [contact_row(row) for row in rows]


SAMPLE_SQL = """
(SELECT {cols} FROM admin.contacts c
 WHERE c.id >= (SELECT min(id) + floor((max(id) - min(id)) * %s) FROM admin.contacts)
   AND ({where}) ORDER BY c.id LIMIT %s)
UNION ALL
(SELECT {cols} FROM admin.contacts c WHERE ({where}) ORDER BY c.id LIMIT %s)
"""


SHUFFLE_SQL = "SELECT {cols} FROM admin.contacts c WHERE {where} ORDER BY random() LIMIT %s"
SHUFFLE_MAX = 50_000


async def sample_contacts(
    pool: aiopg.Pool, where: SqlWhere, n: int, matching: int | None = None
) -> list[ContactRow]:
    """Up to ``n`` matching contacts, random-ish. Few matches (``matching``, the count, if
    known): a random sort of them all. Many: the first ``n`` from a random id on, an index
    walk that stops early where a sort of a million rows would not."""
    if matching is not None and matching <= SHUFFLE_MAX:
        sql = SHUFFLE_SQL.format(cols=SELECT_COLUMNS, where=where.sql)
        return [contact_row(row) for row in await fetch(pool, sql, (*where.params, n))]
    sql = SAMPLE_SQL.format(cols=SELECT_COLUMNS, where=where.sql)
    params = (random.random(), *where.params, n, *where.params, n)
    seen: dict[int, ContactRow] = {}
    for row in await fetch(pool, sql, params):
        seen.setdefault(int(row[0]), contact_row(row))
    return list(seen.values())[:n]
