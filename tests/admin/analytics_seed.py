"""A campaign with known outcomes, written straight into the admin's tables, for the
analytics and export tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiopg

from gateway.adapters import pg

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)
PRICE = Decimal("1.500000")


@dataclass(frozen=True)
class Seeded:
    campaign_id: int
    contact_ids: list[int]


def phone(n: int) -> str:
    return f"+7916{n:07d}"


async def seed_campaign(pool: aiopg.Pool, contacts: int = 40, name: str = "Black Friday") -> Seeded:
    """``contacts`` contacts, half variant A and half B; every 4th failed, every 10th
    expired, the rest delivered 5 s (A) or 20 s (B) after acceptance, one message a
    minute; clicks on every 3rd delivered B, a reply (opt-out) from contact 1 and a
    conversion from contact 2."""
    regions = ["MOW", "SPE", None]
    ids = []
    for n in range(contacts):
        [(cid,)] = await pg.fetch(
            pool,
            "INSERT INTO admin.contacts (phone, region, gender, birth_date) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            (phone(n), regions[n % 3], "mf"[n % 2], datetime(1990 - n, 1, 1).date()),
        )
        ids.append(cid)
    [(campaign,)] = await pg.fetch(
        pool,
        "INSERT INTO admin.campaigns (name, audience_id, sender, variants, schedule, state, "
        "started_at) VALUES (%s, 1, 'Shop', '[]', '{}', 'finished', %s) RETURNING id",
        (name, T0),
    )
    for n, cid in enumerate(ids):
        await _message(pool, campaign, n, cid)
    await _responses(pool, campaign, ids)
    return Seeded(int(campaign), ids)


def outcome(n: int) -> str:
    return "failed" if n % 4 == 3 else "expired" if n % 10 == 9 else "delivered"


async def _message(pool: aiopg.Pool, campaign: int, n: int, contact: int) -> None:
    variant = "AB"[n % 2]
    accepted = T0 + timedelta(minutes=n)
    status = outcome(n)
    delivered = accepted + timedelta(seconds=5 if variant == "A" else 20)
    await pg.execute(
        pool,
        "INSERT INTO admin.campaign_messages (message_id, campaign_id, run_id, contact_id, "
        "variant, status, accepted_at, submitted_at, delivered_at, final_at, provider, price, "
        "error_code) VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            1000 + n, campaign, contact, variant, status, accepted, accepted,
            delivered if status == "delivered" else None,
            delivered if status != "failed" else accepted,
            None if status == "failed" else ("smsc-a" if n % 2 else "smsc-b"),
            None if status == "failed" else PRICE,
            {"failed": "no_route", "expired": "no_receipt"}.get(status),
        ),
    )  # fmt: skip
    if variant == "B" and status == "delivered" and n % 3 == 0:
        code = f"code{n:05d}"
        await pg.execute(
            pool,
            "INSERT INTO admin.links (code, url, campaign_id, contact_id, message_id) "
            "VALUES (%s, 'https://shop.example/sale', %s, %s, %s)",
            (code, campaign, contact, 1000 + n),
        )
        await pg.execute(
            pool, "INSERT INTO admin.clicks (code, at) VALUES (%s, %s), (%s, %s)",
            (code, delivered, code, delivered + timedelta(minutes=1)),
        )  # fmt: skip


async def _responses(pool: aiopg.Pool, campaign: int, ids: list[int]) -> None:
    await pg.execute(
        pool,
        "INSERT INTO admin.replies (inbound_id, contact_id, campaign_id, message_id, variant, at, "
        "opt_out) VALUES (1, %s, %s, 1001, 'B', %s, true)",
        (ids[1], campaign, T0 + timedelta(hours=1)),
    )
    await pg.execute(
        pool,
        "INSERT INTO admin.conversions (external_id, contact_id, event, value, currency, at, "
        "campaign_id, message_id, variant) VALUES ('o-2', %s, 'purchase', 2500, 'RUB', %s, %s, "
        "1002, 'A')",
        (ids[2], T0 + timedelta(hours=2), campaign),
    )
