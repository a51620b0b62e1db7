"""Prepared statements on a real PostgreSQL: numbered placeholders, prepared once per
connection, kept across a rolled-back transaction, and the same rows as the plain text."""

from __future__ import annotations

import aiopg
import pytest

from gateway.adapters import pg
from gateway.adapters.prepared import Prepared, run

SQL = "SELECT x * %s, 'a%%b' FROM unnest(%s::bigint[]) AS u(x) ORDER BY x"


def test_placeholders_are_numbered_and_percent_signs_kept() -> None:
    statement = Prepared(SQL)
    assert statement.parameters == 2
    assert "x * $1, 'a%b' FROM unnest($2::bigint[])" in statement._prepare
    assert Prepared(SQL).name == statement.name != Prepared(SQL + " ").name


async def test_same_rows_as_plain_text_and_prepared_once_per_connection(
    pool: aiopg.Pool,
) -> None:
    statement = Prepared(SQL)
    plain = await pg.fetch(pool, SQL, (3, "{1,2}"))
    assert plain == [(3, "a%b"), (6, "a%b")]
    async with pool.acquire() as conn, conn.cursor() as cur:
        for _ in range(7):  # past the plan cache's five custom plans
            await run(cur, statement, (3, "{1,2}"))
            assert await cur.fetchall() == plain
        await cur.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = %s", (statement.name,)
        )
        assert await cur.fetchone() == (1,)


async def test_a_rolled_back_transaction_keeps_the_statement(pool: aiopg.Pool) -> None:
    statement = Prepared("SELECT %s::int + 1")
    async with pool.acquire() as conn, conn.cursor() as cur:
        with pytest.raises(RuntimeError):
            async with cur.begin():
                await run(cur, statement, (1,))  # prepared here, then rolled back
                raise RuntimeError("roll back")
        await run(cur, statement, (41,))
        assert await cur.fetchone() == (42,)


async def test_a_wrong_number_of_parameters_is_refused_before_the_database(
    pool: aiopg.Pool,
) -> None:
    with pytest.raises(TypeError):
        await pg.fetch(pool, Prepared(SQL), (1,))
