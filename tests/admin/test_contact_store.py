"""Contacts and audiences in a real PostgreSQL: upsert, CSV import, counts, samples, keyset
pages, and random audience queries whose SQL must select exactly what the oracle does."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import date
from decimal import Decimal
from typing import Any

import aiopg
import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admin.adapters import audience_store, contact_store
from admin.adapters.contact_store import import_csv, upsert_contacts
from admin.core.audience import (
    EVERYONE,
    REACHABLE,
    SqlWhere,
    compile_where,
    matches,
    parse_query,
)
from admin.core.contacts import parse_contact
from gateway.adapters.pg import fetch
from gateway.embedded import ServerUrls
from tests.admin.audience_gen import queries, random_contact, rules

pytestmark = pytest.mark.usefixtures("admin_clean")
EVERYONE_SQL = SqlWhere("TRUE", ())


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _row(pool: aiopg.Pool, phone: str) -> dict[str, Any]:
    rows = await fetch(pool, "SELECT id FROM admin.contacts WHERE phone = %s", (phone,))
    found = await contact_store.get_contact(pool, rows[0][0])
    assert found is not None
    return found.fields


async def test_upsert_inserts_then_merges(admin_db: aiopg.Pool) -> None:
    first = parse_contact({"phone": "+79211234567", "first_name": "Анна", "tags": "vip",
                           "custom": {"a": 1}, "total_spend": "100"})  # fmt: skip
    assert await upsert_contacts(admin_db, [first]) == contact_store.Upserted(1, 0)
    row = await _row(admin_db, "+79211234567")
    assert row["subscribed"] is True and row["consent"] is False  # the defaults
    assert row["timezone"] == "Europe/Moscow" and row["purchases"] == 0

    again = parse_contact(
        {
            "phone": "89211234567",
            "last_name": "Ли",
            "tags": "new",
            "custom": {"b": 2},
            "subscribed": "нет",
            "timezone": "Asia/Omsk",
        }
    )
    other = parse_contact({"phone": "+79161112233"})
    assert await upsert_contacts(admin_db, [again, other]) == contact_store.Upserted(1, 1)
    row = await _row(admin_db, "+79211234567")
    assert (row["first_name"], row["last_name"]) == ("Анна", "Ли")  # empty kept, given set
    assert sorted(row["tags"]) == ["new", "vip"] and row["custom"] == {"a": 1, "b": 2}
    assert row["subscribed"] is False and row["total_spend"] == Decimal("100.00")
    assert row["timezone"] == "Asia/Omsk"

    await upsert_contacts(admin_db, [parse_contact({"phone": "+79211234567"})])
    assert (await _row(admin_db, "+79211234567"))["timezone"] == "Asia/Omsk"  # given beats derived


async def test_a_batch_may_name_a_phone_twice(admin_db: aiopg.Pool) -> None:
    twice = [parse_contact({"phone": "+79211234567", "first_name": n}) for n in ("A", "B")]
    assert await upsert_contacts(admin_db, twice) == contact_store.Upserted(1, 0)
    assert (await _row(admin_db, "+79211234567"))["first_name"] == "B"


async def test_csv_import_reports_lines_and_keeps_good_rows(admin_db: aiopg.Pool) -> None:
    lines = ["Телефон;Имя;Дата рождения;Подписка;Карта"]
    lines += [f"+7921{n:07d};Имя{n};01.02.1990;да;gold" for n in range(5000)]
    lines[10] = "+7921;Плохой;01.02.1990;да;"  # line 11
    lines[20] = "+79211234567;x;31.02.1990;да;"  # line 21
    data = ("\r\n".join(lines) + "\r\n").encode("cp1251")
    report = await import_csv(admin_db, _chunks(data, 7777))
    assert report.fatal is None and report.rows == 5000
    assert [(e.line, e.field) for e in report.errors] == [(11, "phone"), (21, "birth_date")]
    assert (report.inserted, report.updated, report.failed) == (4998, 0, 2)
    assert await contact_store.count_all(admin_db) == 4998
    row = await _row(admin_db, "+79210000005")
    assert row["custom"] == {"карта": "gold"} and row["birth_date"] == date(1990, 2, 1)

    again = await import_csv(admin_db, _chunks(data, 1 << 16))
    assert (again.inserted, again.updated) == (0, 4998)


async def test_csv_import_stops_at_a_broken_file_keeping_what_came_before(
    admin_db: aiopg.Pool,
) -> None:
    data = b'phone;name\n+79211234567;A\n+79161112233;"B\n'
    report = await import_csv(admin_db, _chunks(data, 5))
    assert report.fatal is not None and "never closed" in report.fatal
    assert report.inserted == 1


async def _many(pool: aiopg.Pool, n: int, seed: int = 7) -> list[Any]:
    rng = random.Random(seed)
    contacts = [random_contact(rng, i) for i in range(n)]
    await upsert_contacts(pool, contacts)
    return contacts


async def test_count_sample_and_keyset_pages(admin_db: aiopg.Pool) -> None:
    await _many(admin_db, 500)
    where = compile_where(parse_query({"rules": [{"field": "subscribed", "op": "is_true"}]}),
                          date.today())  # fmt: skip
    total = await audience_store.count_contacts(admin_db, where)
    assert 0 < total < 500
    for matching in (None, total):  # from a random id on; a random sort of every match
        sample = await audience_store.sample_contacts(admin_db, where, 10, matching)
        assert len(sample) == 10 and all(r.fields["subscribed"] for r in sample)
    seen, after = [], 0
    while page := await audience_store.iter_contacts(admin_db, where, after, 37):
        seen += [r.id for r in page]
        after = page[-1].id
    assert len(seen) == total and seen == sorted(set(seen))
    reachable = await audience_store.count_contacts(admin_db, where.and_(REACHABLE))
    assert reachable <= total
    assert await audience_store.count_contacts(admin_db, where, within_ms=5000) == total
    slow = SqlWhere("pg_sleep(0.5) IS NOT NULL", ())
    with pytest.raises(audience_store.TooSlow):
        await audience_store.count_contacts(admin_db, slow, within_ms=50)
    assert await audience_store.count_contacts(admin_db, EVERYONE_SQL) == 500  # limit was local


async def test_search(admin_db: aiopg.Pool) -> None:
    await upsert_contacts(admin_db, [
        parse_contact({"phone": "+79211234567", "first_name": "Анна", "email": "a_b@x.ru"}),
        parse_contact({"phone": "+79161112233", "last_name": "АННАНЬЕВ"}),
        parse_contact({"phone": "+79031112233", "first_name": "Борис"}),
    ])  # fmt: skip
    found = await contact_store.search_contacts(admin_db, "анна")
    assert [r.phone for r in found] == ["+79211234567", "+79161112233"]
    assert [r.phone for r in await contact_store.search_contacts(admin_db, "8 921 123")] == [
        "+79211234567"
    ]
    assert [r.phone for r in await contact_store.search_contacts(admin_db, "a_b")] == [
        "+79211234567"
    ]
    assert len(await contact_store.search_contacts(admin_db, "")) == 3


async def test_audiences_crud(admin_db: aiopg.Pool) -> None:
    query = parse_query(
        {"match": "any", "rules": [{"field": "tags", "op": "any", "value": ["vip"]}]}
    )
    made = await audience_store.create_audience(admin_db, "VIP", query, None)
    found = await audience_store.get_audience(admin_db, made)
    assert found is not None and found.query == query and found.name == "VIP"
    with pytest.raises(audience_store.DuplicateName):
        await audience_store.create_audience(admin_db, "vip", query, None)
    assert await audience_store.update_audience(admin_db, made, "Все", EVERYONE)
    assert [a.name for a in await audience_store.list_audiences(admin_db)] == ["Все"]
    assert await audience_store.delete_audience(admin_db, made)
    assert await audience_store.get_audience(admin_db, made) is None


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE admin.contacts; --",
        "\\'",
        "%' OR '1'='1",
        "a\\",
        "$1",
        "%s",
        "%(x)s",
        "E'\\x00'",
        "}{c}",
    ],
)
async def test_hostile_values_are_only_values(admin_db: aiopg.Pool, value: str) -> None:
    await upsert_contacts(admin_db, [parse_contact({"phone": "+79211234567", "first_name": value})])
    for op in ("eq", "contains", "starts_with", "not_contains"):
        query = parse_query({"rules": [{"field": "first_name", "op": op, "value": value}]})
        count = await audience_store.count_contacts(admin_db, compile_where(query, date.today()))
        assert count == (0 if op == "not_contains" else 1)
    custom = parse_query({"rules": [{"field": "custom", "key": "k", "op": "eq", "value": value}]})
    assert await audience_store.count_contacts(admin_db, compile_where(custom, date.today())) == 0


async def test_sql_agrees_with_the_oracle(admin_db: aiopg.Pool, server_urls: ServerUrls) -> None:
    """Random queries over random contacts: the database selects what ``matches`` says."""
    await _many(admin_db, 400)
    rows = await audience_store.iter_contacts(
        admin_db, compile_where(EVERYONE, date.today()), 0, 1000
    )
    assert len(rows) == 400
    kinds: list[str] = []
    with closing(psycopg2.connect(server_urls.database_url)) as conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = '10s'")

        single = rules().map(lambda rule: {"rules": [rule]})

        @given(st.one_of(queries(), single), st.dates(date(2020, 1, 1), date(2032, 12, 31)))
        @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
        def agrees(data: dict[str, Any], today: date) -> None:
            query = parse_query(data)
            where = compile_where(query, today)
            cur.execute(f"SELECT id FROM admin.contacts c WHERE {where.sql}", where.params)
            selected = {r[0] for r in cur.fetchall()}
            expected = {r.id for r in rows if matches(query, r.fields, today)}
            kinds.append(
                "none" if not selected else "all" if len(selected) == len(rows) else "some"
            )
            assert selected == expected, where

        agrees()
        assert kinds.count("some") > 50  # enough examples tell contacts apart
