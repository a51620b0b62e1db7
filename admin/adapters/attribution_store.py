"""The SQL of attribution: contacts by phone, their recent campaign messages, and the
replies and conversions stored with the campaign each was attributed to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiopg

from admin.core.attribution import Touch
from gateway.adapters.pg import fetch


async def contacts_by_phone(pool: aiopg.Pool, phones: Sequence[str]) -> dict[str, int]:
    rows = await fetch(
        pool, "SELECT phone, id FROM admin.contacts WHERE phone = ANY(%s::text[])", (list(phones),)
    )
    return {r[0]: r[1] for r in rows}


async def known_contacts(pool: aiopg.Pool, ids: Sequence[int]) -> set[int]:
    rows = await fetch(
        pool, "SELECT id FROM admin.contacts WHERE id = ANY(%s::bigint[])", (list(ids),)
    )
    return {r[0] for r in rows}


TOUCHES_SQL = """
SELECT contact_id, campaign_id, message_id, variant, status,
       COALESCE(submitted_at, accepted_at)
FROM admin.campaign_messages
WHERE contact_id = ANY(%s::bigint[]) AND COALESCE(submitted_at, accepted_at) >= %s
  AND accepted_at <= %s
"""


async def touches(
    pool: aiopg.Pool, contact_ids: Sequence[int], times: Sequence[datetime], window: timedelta
) -> list[Touch]:
    """The campaign messages that could earn outcomes of these contacts at these times."""
    if not contact_ids:
        return []
    params = (list(set(contact_ids)), min(times) - window, max(times))
    return [Touch(*r) for r in await fetch(pool, TOUCHES_SQL, params)]


@dataclass(frozen=True, slots=True)
class ReplyRow:
    inbound_id: int
    contact_id: int
    at: datetime
    opt_out: bool
    opt_in: bool
    touch: Touch | None


REPLIES_SQL = """
INSERT INTO admin.replies (inbound_id, contact_id, at, opt_out, opt_in, campaign_id,
                           message_id, variant)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::bool[], %s::bool[],
                     %s::bigint[], %s::bigint[], %s::text[])
ON CONFLICT (inbound_id) DO NOTHING
RETURNING contact_id, opt_out
"""

# An opt-out keyword unsubscribes the contact in the admin too (the gateway already
# refuses bulk messages to the number); only for a reply stored now, not a replayed one.
UNSUBSCRIBE_SQL = """
UPDATE admin.contacts SET subscribed = false, updated_at = now()
WHERE id = ANY(%s::bigint[]) AND subscribed
"""


async def save_replies(pool: aiopg.Pool, rows: Sequence[ReplyRow]) -> tuple[int, int]:
    """Store replies (a replayed one is kept once); returns (stored, unsubscribed)."""
    if not rows:
        return 0, 0
    params = (
        [r.inbound_id for r in rows],
        [r.contact_id for r in rows],
        [r.at for r in rows],
        [r.opt_out for r in rows],
        [r.opt_in for r in rows],
        *_touch_columns([r.touch for r in rows]),
    )
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await cur.execute(REPLIES_SQL, params)
        stored = await cur.fetchall()
        await cur.execute(UNSUBSCRIBE_SQL, ([c for c, opt_out in stored if opt_out],))
        return len(stored), int(cur.rowcount)


def _touch_columns(touches: Sequence[Touch | None]) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        [t and t.campaign_id for t in touches],
        [t and t.message_id for t in touches],
        [t and t.variant for t in touches],
    )


@dataclass(frozen=True, slots=True)
class ConversionRow:
    external_id: str
    contact_id: int
    event: str
    value: Decimal | None
    currency: str | None
    at: datetime
    touch: Touch | None


@dataclass(frozen=True, slots=True)
class Stored:
    external_id: str
    id: int
    campaign_id: int | None
    duplicate: bool


INSERT_CONVERSIONS_SQL = """
INSERT INTO admin.conversions (external_id, contact_id, event, value, currency, at,
                               campaign_id, message_id, variant, source)
SELECT *, %s FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::numeric[], %s::text[],
                         %s::timestamptz[], %s::bigint[], %s::bigint[], %s::text[])
ON CONFLICT (external_id) DO NOTHING
RETURNING external_id, id, campaign_id
"""

EXISTING_SQL = """
SELECT external_id, id, campaign_id FROM admin.conversions WHERE external_id = ANY(%s::text[])
"""


async def save_conversions(
    pool: aiopg.Pool, rows: Sequence[ConversionRow], source: str
) -> list[Stored]:
    """Store new conversions; one already stored under its external_id stays as it was
    (returned with ``duplicate``). In the order given."""
    params = (
        source,
        [r.external_id for r in rows],
        [r.contact_id for r in rows],
        [r.event for r in rows],
        [r.value for r in rows],
        [r.currency for r in rows],
        [r.at for r in rows],
        *_touch_columns([r.touch for r in rows]),
    )
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(INSERT_CONVERSIONS_SQL, params)
        new = {r[0]: Stored(r[0], r[1], r[2], False) for r in await cur.fetchall()}
        await cur.execute(
            EXISTING_SQL, ([r.external_id for r in rows if r.external_id not in new],)
        )
        old = {r[0]: Stored(r[0], r[1], r[2], True) for r in await cur.fetchall()}
    return [new.get(r.external_id) or old[r.external_id] for r in rows]
