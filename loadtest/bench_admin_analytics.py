"""Benchmark: the analytics report and the message export of a 1,000,000-message campaign.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB \\
        python -m loadtest.bench_admin_analytics [--messages 1000000]

``--messages`` contacts and campaign messages made in the server (generate_series: two
variants, 4 regions, 80 % delivered, a link clicked by 5 %, replies and conversions on
1 %), vacuumed and analysed; then timed (median of 3 after a warm-up): the campaign's
report as the page builds it (``reports.campaign_report``), the overview, and the CSV
export of every message (rows/s and the process's peak RSS, which the chunking bounds).
Truncates the admin's contacts and campaign tables: point it at a scratch database.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiopg

from admin.adapters import analytics_store as store
from admin.adapters import db, export_store
from admin.services import reports
from admin.services.export import MESSAGES, Format, write_export
from gateway.adapters import pg
from gateway.embedded import ServerUrls
from smsgw.runner import with_scratch_servers

FILL = [
    "TRUNCATE admin.contacts, admin.campaigns, admin.links, admin.clicks, admin.replies, "
    "admin.conversions RESTART IDENTITY CASCADE",
    "INSERT INTO admin.contacts (phone, region, gender) SELECT '+7916' || lpad(g::text, 7, '0'), "
    "(ARRAY['MOW','SPE','NSK','KZN'])[1 + g %% 4], (ARRAY['m','f'])[1 + g %% 2] "
    "FROM generate_series(1, %(n)s) g",
    "INSERT INTO admin.campaigns (name, audience_id, sender, variants, schedule, state) "
    "VALUES ('bench', 1, 'Shop', '[]', '{}', 'finished')",
    "INSERT INTO admin.campaign_messages (message_id, campaign_id, run_id, contact_id, variant, "
    "status, accepted_at, submitted_at, delivered_at, final_at, provider, price) "
    "SELECT g, 1, 1, g, (ARRAY['A','B'])[1 + g %% 2], "
    "CASE WHEN g %% 10 < 8 THEN 'delivered' WHEN g %% 10 = 8 THEN 'expired' ELSE 'failed' END, "
    "t, t, CASE WHEN g %% 10 < 8 THEN t + (g %% 30) * interval '1 second' END, "
    "t + interval '30 seconds', (ARRAY['smsc-a','smsc-b'])[1 + g %% 2], 0.35 "
    "FROM generate_series(1, %(n)s) g, "
    "LATERAL (SELECT now() - interval '1 day' + g * interval '50 milliseconds' AS t) x",
    "INSERT INTO admin.links (code, url, campaign_id, contact_id, message_id) "
    "SELECT 'bench' || lpad(g::text, 8, '0'), 'https://shop.example/', 1, g, g "
    "FROM generate_series(1, %(n)s) g WHERE g %% 20 = 0",
    "INSERT INTO admin.clicks (code) SELECT code FROM admin.links",
    "INSERT INTO admin.replies (inbound_id, contact_id, campaign_id, message_id, variant, at, "
    "opt_out) SELECT g, g, 1, g, (ARRAY['A','B'])[1 + g %% 2], now(), g %% 300 = 0 "
    "FROM generate_series(1, %(n)s) g WHERE g %% 100 = 0",
    "INSERT INTO admin.conversions (external_id, contact_id, event, value, at, campaign_id, "
    "message_id, variant) SELECT 'o' || g, g, 'purchase', 990, now(), 1, g, "
    "(ARRAY['A','B'])[1 + g %% 2] FROM generate_series(1, %(n)s) g WHERE g %% 100 = 1",
]


async def timed(label: str, work: Callable[[], Awaitable[Any]]) -> None:
    await work()
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        await work()
        runs.append(time.perf_counter() - start)
    each = ", ".join(f"{r:.2f}" for r in runs)
    print(f"{label}: median {statistics.median(runs):.2f} s (runs {each})")


async def export_all(pool: aiopg.Pool) -> int:
    sent = 0

    async def write(data: bytes) -> None:
        nonlocal sent
        sent += len(data)

    chunks = export_store.message_chunks(pool, 1, 5000)
    return await write_export(chunks, MESSAGES, Format.csv, True, write)


async def bench(urls: ServerUrls, n: int) -> None:
    # aiopg's default 30 s per statement is too short for filling a million rows.
    async with aiopg.create_pool(urls.database_url, maxsize=4, timeout=900) as pool:
        await pg.migrate(pool)
        await db.migrate(pool)
        start = time.perf_counter()
        async with pool.acquire() as conn, conn.cursor() as cur:
            for sql in FILL:
                await cur.execute(sql, {"n": n})
            await cur.execute("VACUUM ANALYZE admin.campaign_messages")
            await cur.execute("VACUUM ANALYZE admin.contacts")
        print(f"filled {n} messages in {time.perf_counter() - start:.1f} s")
        await timed(
            "campaign report (7 queries)", lambda: reports.campaign_report(pool, 1, "region")
        )
        await timed("overview", lambda: reports.overview(pool))
        for label, query in (
            ("  total counts", lambda: store.campaign_counts(pool, 1)),
            ("  by variant", lambda: store.by_variant(pool, 1)),
            ("  by region", lambda: store.by_segment(pool, 1, "region")),
            ("  timeline", lambda: store.timeline(pool, 1, "minute")),
            ("  cost by provider", lambda: store.cost_by_provider(pool, 1)),
        ):
            await timed(label, query)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        rows = await export_all(pool)
        took = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"CSV export: {rows} rows in {took:.1f} s ({rows / took:,.0f} rows/s); "
            f"peak RSS {peak / 1024:.0f} MiB (before the export {before / 1024:.0f} MiB)"
        )
        await pg.execute(pool, FILL[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    with_scratch_servers(lambda urls: bench(urls, args.messages))


if __name__ == "__main__":
    main()
