"""The BI view set: bi_reader reads every view of schema bi, and nothing else; phones leave
masked; the results view adds up what the messages did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiopg
import psycopg2
import pytest

from gateway.adapters import pg

VIEWS = (
    "campaigns", "campaign_messages", "conversions", "clicks", "replies", "campaign_results",
    "daily_delivery",
)  # fmt: skip
T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


@pytest.fixture
async def as_bi_reader(admin_clean: None, admin_db: aiopg.Pool) -> AsyncIterator[Any]:
    """A cursor on a connection that has taken on the bi_reader role."""
    async with admin_db.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SET ROLE bi_reader")
        try:
            yield cur
        finally:
            await cur.execute("RESET ROLE")


async def seed(pool: aiopg.Pool) -> int:
    [(contact,)] = await pg.fetch(
        pool,
        "INSERT INTO admin.contacts (phone, region) VALUES ('+79161230003', 'MOW') RETURNING id",
    )
    [(campaign,)] = await pg.fetch(
        pool,
        "INSERT INTO admin.campaigns (name, audience_id, sender, variants, schedule) "
        "VALUES ('bi', 1, 'Shop', '[]', '{}') RETURNING id",
    )
    rows = [
        (1, "A", "delivered", Decimal("1.20"), 10),
        (2, "A", "expired", Decimal("1.20"), None),
        (3, "B", "failed", None, None),
    ]
    for mid, variant, status, price, seconds in rows:
        delivered = T0 + timedelta(seconds=seconds) if seconds else None
        await pg.execute(
            pool,
            "INSERT INTO admin.campaign_messages (message_id, campaign_id, run_id, contact_id, "
            "variant, status, accepted_at, delivered_at, price, provider) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'smsc')",
            (mid, campaign, mid, contact, variant, status, T0, delivered, price),
        )
    await pg.execute(
        pool,
        "INSERT INTO admin.conversions (external_id, contact_id, event, value, at, campaign_id, "
        "message_id, variant) VALUES ('o1', %s, 'purchase', 100, %s, %s, 1, 'A')",
        (contact, T0, campaign),
    )
    return int(campaign)


async def test_bi_reader_reads_every_view(admin_db: aiopg.Pool, as_bi_reader: Any) -> None:
    campaign = await seed(admin_db)
    for view in VIEWS:
        await as_bi_reader.execute(f"SELECT * FROM bi.{view}")
        assert await as_bi_reader.fetchall() is not None
    await as_bi_reader.execute(
        "SELECT message_id, phone_masked, region, seconds_to_deliver FROM bi.campaign_messages "
        "ORDER BY 1 LIMIT 1"
    )
    assert await as_bi_reader.fetchall() == [(1, "+79*******03", "MOW", Decimal(10))]
    await as_bi_reader.execute(
        "SELECT variant, sent, delivered, failed, expired, delivery_rate, cost, conversions, "
        "conversion_value, p50_seconds_to_deliver FROM bi.campaign_results "
        "WHERE campaign_id = %s ORDER BY variant",
        (campaign,),
    )
    assert await as_bi_reader.fetchall() == [
        ("A", 2, 1, 0, 1, Decimal("0.5000"), Decimal("2.40"), 1, Decimal("100.0000"), 10.0),
        ("B", 1, 0, 1, 0, Decimal("0.0000"), Decimal(0), 0, Decimal(0), None),
    ]


@pytest.mark.parametrize(
    "table", ["admin.contacts", "admin.campaign_messages", "admin.users", "messages", "clients"]
)
async def test_bi_reader_reads_nothing_else(as_bi_reader: Any, table: str) -> None:
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        await as_bi_reader.execute(f"SELECT 1 FROM {table} LIMIT 1")


async def test_bi_reader_writes_nothing(as_bi_reader: Any) -> None:
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        await as_bi_reader.execute("DELETE FROM bi.conversions")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        await as_bi_reader.execute("CREATE VIEW bi.mine AS SELECT 1")


async def test_the_role_is_made_once_and_cannot_log_in(admin_db: aiopg.Pool) -> None:
    rows = await pg.fetch(admin_db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'bi_reader'")
    assert rows == [(False,)]
