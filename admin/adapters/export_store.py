"""The SQL of exports: message-level rows by keyset chunks (a 1,000,000-message campaign
never sits in memory), and the campaign results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiopg

from admin.adapters.analytics_store import fetch_named
from gateway.adapters.pg import fetch

MESSAGE_COLUMNS = (
    "message_id", "campaign_id", "variant", "phone", "status", "parts", "price", "provider",
    "error_code", "accepted_at", "submitted_at", "delivered_at", "final_at", "clicks",
)  # fmt: skip

# Clicks are joined through links.message_id (set by the runner once the gateway gave the
# id), by index, per chunk.
MESSAGES_SQL = """
WITH chunk AS (
  SELECT cm.message_id, cm.campaign_id, cm.variant::text, c.phone, cm.status, cm.parts,
         cm.price, cm.provider, cm.error_code, cm.accepted_at, cm.submitted_at,
         cm.delivered_at, cm.final_at
  FROM admin.campaign_messages cm LEFT JOIN admin.contacts c ON c.id = cm.contact_id
  WHERE cm.campaign_id = %(campaign)s AND cm.message_id > %(after)s
  ORDER BY cm.message_id LIMIT %(limit)s
), k AS (
  SELECT l.message_id, count(*) AS n
  FROM admin.links l JOIN admin.clicks k ON k.code = l.code
  WHERE l.message_id IN (SELECT message_id FROM chunk)
  GROUP BY 1
)
SELECT chunk.*, COALESCE(k.n, 0) FROM chunk LEFT JOIN k USING (message_id)
ORDER BY chunk.message_id
"""


async def message_chunks(
    pool: aiopg.Pool, campaign_id: int, chunk: int
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """A campaign's messages, ``chunk`` rows at a time, in id order."""
    after = 0
    while True:
        params = {"campaign": campaign_id, "after": after, "limit": chunk}
        rows = await fetch_named(pool, MESSAGES_SQL, params)
        if not rows:
            return
        yield rows
        after = rows[-1][0]


RESULT_COLUMNS = (
    "campaign_id", "campaign", "state", "variant", "sent", "delivered", "failed", "expired",
    "pending", "delivery_rate", "cost", "p50_seconds_to_deliver", "p95_seconds_to_deliver",
    "clicks_unique", "clicks_total", "replies", "opt_outs", "conversions", "conversion_value",
)  # fmt: skip

RESULTS_SQL = """
SELECT r.campaign_id, c.name, c.state, r.variant, r.sent, r.delivered, r.failed, r.expired,
       r.pending, r.delivery_rate::float8, r.cost, r.p50_seconds_to_deliver,
       r.p95_seconds_to_deliver,
       r.clicks_unique, r.clicks_total, r.replies, r.opt_outs, r.conversions, r.conversion_value
FROM bi.campaign_results r JOIN admin.campaigns c ON c.id = r.campaign_id
WHERE r.campaign_id = ANY(%s::bigint[])
ORDER BY r.campaign_id, r.variant
"""
CAMPAIGN_IDS_SQL = "SELECT id FROM admin.campaigns WHERE id > %s ORDER BY id LIMIT %s"


async def result_chunks(pool: aiopg.Pool, chunk: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Every campaign's results per variant (the bi.campaign_results view), ``chunk``
    campaigns at a time; a campaign that sent nothing has no row."""
    after = 0
    while True:
        ids = [r[0] for r in await fetch(pool, CAMPAIGN_IDS_SQL, (after, chunk))]
        if not ids:
            return
        yield await fetch(pool, RESULTS_SQL, (ids,))
        after = ids[-1]


async def campaign_exists(pool: aiopg.Pool, campaign_id: int) -> bool:
    return bool(await fetch(pool, "SELECT 1 FROM admin.campaigns WHERE id = %s", (campaign_id,)))
