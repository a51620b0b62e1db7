"""Benchmark: contacts CSV import and audience counts.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB \\
        python -m loadtest.bench_admin_contacts [--import-rows 100000] [--contacts 1000000] \\
        [--json out.json]

1. CSV import: a realistic file (Russian names and cities, ``;``-separated, dates as
   DD.MM.YYYY, tags, custom columns) of ``--import-rows`` rows, streamed in 64 KiB chunks
   through ``contact_store.import_csv`` (parse, validate, upsert) into an empty table.
2. Audience count: ``--contacts`` contacts generated in the server (``generate_series``,
   skewed distributions), vacuumed and analysed, then a 5-criteria audience counted
   (median of 5 runs, after one warm-up), with the plan's top node.
Truncates ``admin.contacts`` first: point it at a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiopg

from admin.adapters import audience_store, contact_store, db
from admin.core.audience import compile_where, parse_query
from gateway.adapters import pg

CITIES = ["Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Самара",
          "Омск", "Краснодар", "Владивосток", "Калининград"]  # fmt: skip
NAMES = ["Анна", "Мария", "Елена", "Ольга", "Иван", "Алексей", "Дмитрий", "Сергей", "Ёлка"]
SURNAMES = ["Иванова", "Петров", "Смирнова", "Кузнецов", "Попова", "Соколов"]
TAGS = ["vip", "new", "sale", "sport", "kids", "auto", "beauty"]
HEADER = "Телефон;Имя;Фамилия;Город;Пол;Дата рождения;Дата регистрации;Теги;Подписка;Согласие;Сумма покупок;Покупки;Карта\n"  # noqa: E501
CHUNK = 1 << 16


def csv_rows(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    lines = [HEADER]
    for i in range(n):
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1955, 2006)
        tags = ",".join(rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3))))
        lines.append(
            f"8921{i:07d};{rng.choice(NAMES)};{rng.choice(SURNAMES)};{rng.choice(CITIES)};"
            f"{rng.choice('мж')};{day:02d}.{month:02d}.{year};2024-{month:02d}-{day:02d};{tags};"
            f"{rng.choice(('да', 'да', 'нет'))};{rng.choice(('да', 'нет'))};"
            f"{rng.randint(0, 90000)},{rng.randint(0, 99):02d};{rng.randint(0, 40)};"
            f"{rng.choice(('gold', 'silver', ''))}\n"
        )
    return "".join(lines).encode()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


async def bench_import(pool: aiopg.Pool, rows: int) -> dict[str, Any]:
    await pg.execute(pool, "TRUNCATE admin.contacts RESTART IDENTITY CASCADE")
    data = csv_rows(rows)
    started = time.perf_counter()
    report = await contact_store.import_csv(pool, _chunks(data))
    elapsed = time.perf_counter() - started
    assert report.inserted == rows and not report.failed, report
    return {"rows": rows, "bytes": len(data), "seconds": round(elapsed, 2),
            "rows_per_s": round(rows / elapsed)}  # fmt: skip


GENERATE_SQL = """
INSERT INTO admin.contacts (phone, first_name, last_name, city, region, timezone, gender,
    birth_date, signup_date, source_site, tags, subscribed, consent, consent_at,
    last_purchase_at, total_spend, purchases, last_activity_at, loyalty_level, custom)
SELECT '+7' || (9000000000 + g)::text,
       (ARRAY['Анна','Мария','Елена','Ольга','Иван','Алексей','Дмитрий','Сергей'])[1 + mod(g, 8)],
       (ARRAY['Иванова','Петров','Смирнова','Кузнецов','Попова','Соколов'])[1 + mod(g, 6)],
       city, city, 'Europe/Moscow',
       CASE WHEN random() < 0.55 THEN 'f' ELSE 'm' END,
       date '1950-01-01' + (power(random(), 0.7) * 20000)::int,
       date '2019-01-01' + (random() * 2500)::int,
       (ARRAY['shop.ru','app','promo.ru','partner'])[1 + (random() * 3.99)::int],
       (ARRAY(SELECT t FROM unnest(ARRAY['vip','new','sale','sport','kids','auto','beauty']) t
              WHERE random() < 0.15 + 0 * g)),  -- g: drawn again for each row
       random() < 0.9, random() < 0.7,
       now() - random() * interval '1500 days',
       CASE WHEN random() < 0.8 THEN now() - power(random(), 2) * interval '900 days' END,
       round((exp(random() * 10) - 1)::numeric, 2),
       (power(random(), 3) * 60)::int,
       now() - power(random(), 2) * interval '400 days',
       (ARRAY['bronze','bronze','bronze','silver','silver','gold'])[1 + (random() * 5.99)::int],
       jsonb_build_object('club', (random() * 10)::int)
FROM (SELECT g, (ARRAY['Москва','Москва','Москва','Санкт-Петербург','Санкт-Петербург',
                       'Новосибирск','Екатеринбург','Казань','Самара','Краснодар'])
                [1 + (random() * 9.99)::int] AS city
      FROM generate_series(%s, %s) AS g) AS s
"""

FIVE = {
    "match": "all",
    "rules": [
        {"field": "city", "op": "in", "value": ["Москва", "Санкт-Петербург"]},
        {"field": "subscribed", "op": "is_true"},
        {"field": "tags", "op": "any", "value": ["vip", "sale"]},
        {"field": "last_purchase_at", "op": "within_last_days", "value": 180},
        {"field": "total_spend", "op": "gte", "value": 1000},
    ],
}


SECONDARY_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = 'admin' AND tablename = 'contacts'
  AND indexname NOT IN ('contacts_pkey', 'contacts_phone_key')
"""


async def generate(pool: aiopg.Pool, total: int, step: int = 100_000) -> float:
    """Fill the table as a bulk load does: secondary indexes dropped, then built once."""
    await pg.execute(pool, "TRUNCATE admin.contacts RESTART IDENTITY CASCADE")
    indexes = await pg.fetch(pool, SECONDARY_INDEXES)
    started = time.perf_counter()
    for name, _ in indexes:
        await pg.execute(pool, f"DROP INDEX admin.{name}")
    try:
        for low in range(1, total + 1, step):
            await pg.execute(pool, GENERATE_SQL, (low, min(low + step - 1, total)))
    finally:
        for _, definition in indexes:
            await pg.execute(pool, definition)
    await pg.execute(pool, "VACUUM ANALYZE admin.contacts")
    return time.perf_counter() - started


async def bench_count(pool: aiopg.Pool, total: int) -> dict[str, Any]:
    generated = await generate(pool, total)
    where = compile_where(parse_query(FIVE), datetime.now(UTC).date())
    count = await audience_store.count_contacts(pool, where)  # warm-up
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await audience_store.count_contacts(pool, where)
        times.append(time.perf_counter() - started)
    plan = await pg.fetch(pool, f"EXPLAIN SELECT count(*) FROM admin.contacts c WHERE {where.sql}",
                          where.params)  # fmt: skip
    return {"contacts": total, "generate_s": round(generated, 1), "matching": count,
            "count_ms_median": round(statistics.median(times) * 1000, 1),
            "count_ms_runs": [round(t * 1000, 1) for t in times],
            "plan": [row[0] for row in plan][:6]}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with pg.open_pool(os.environ["DATABASE_URL"], 2) as pool:
        await pg.migrate(pool)
        await db.migrate(pool)
        result = {"import": await bench_import(pool, args.import_rows)}
        print("CSV import:", json.dumps(result["import"]), flush=True)
        if args.contacts:
            result["count"] = await bench_count(pool, args.contacts)
            print("audience count:", json.dumps(result["count"], ensure_ascii=False), flush=True)
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--json", default="bench_admin_contacts.json")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    with open(args.json, "w") as out:
        json.dump(result, out, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    cli()
