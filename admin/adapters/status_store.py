"""Statuses from the gateway's events → ``admin.campaign_messages``, one statement a batch.

Monotonic like the gateway's own table (gateway/core/lifecycle.py): a row's status moves
only to a state of higher rank, and its delivery and final times and error code move with
it; ``submitted_at``, the provider, price and parts only fill what is missing (a late
``submitted`` after ``delivered`` leaves the status alone but may still say when it was
handed over). Rows are locked in id order, so that two admin processes applying
overlapping batches wait for each other instead of deadlocking. Ids that are not
campaign messages match no row and cost one index probe.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiopg

from admin.core.status_events import Change
from gateway.core.lifecycle import State


def rank_sql(column: str) -> str:
    """A status label's lifecycle rank, in SQL, from the gateway's one table."""
    arms = " ".join(f"WHEN '{s.label}' THEN {s.rank}" for s in State)
    return f"(CASE {column} {arms} ELSE 0 END)"


MOVES = f"u.rank > {rank_sql('m.status')}"

APPLY_SQL = f"""
WITH locked AS (
  SELECT message_id FROM admin.campaign_messages
  WHERE message_id = ANY(%s::bigint[]) ORDER BY message_id FOR UPDATE
), u AS (
  SELECT * FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::timestamptz[],
                       %s::timestamptz[], %s::timestamptz[], %s::text[], %s::text[],
                       %s::numeric[], %s::int[])
    AS u(message_id, status, rank, submitted_at, delivered_at, final_at, provider,
         error_code, price, parts)
), upd AS (
  UPDATE admin.campaign_messages m SET
    status = CASE WHEN {MOVES} THEN u.status ELSE m.status END,
    delivered_at = CASE WHEN {MOVES} THEN u.delivered_at ELSE m.delivered_at END,
    final_at = CASE WHEN {MOVES} THEN u.final_at ELSE m.final_at END,
    error_code = CASE WHEN {MOVES} THEN COALESCE(u.error_code, m.error_code)
                      ELSE m.error_code END,
    submitted_at = COALESCE(m.submitted_at, u.submitted_at),
    provider = COALESCE(m.provider, u.provider),
    price = COALESCE(m.price, u.price),
    parts = COALESCE(u.parts, m.parts)
  FROM u JOIN locked l USING (message_id)
  WHERE m.message_id = u.message_id
    AND ({MOVES} OR (m.submitted_at IS NULL AND u.submitted_at IS NOT NULL)
         OR (m.provider IS NULL AND u.provider IS NOT NULL)
         OR (m.price IS NULL AND u.price IS NOT NULL)
         OR (u.parts IS NOT NULL AND u.parts <> m.parts))
  RETURNING m.message_id
)
SELECT l.message_id, (SELECT count(*) FROM upd) FROM locked l
"""


async def apply(pool: aiopg.Pool, changes: Sequence[Change]) -> tuple[set[int], int]:
    """Apply a folded batch; returns the ids that are campaign messages and how many rows
    changed."""
    if not changes:
        return set(), 0
    ids = [c.message_id for c in changes]
    params = (
        ids,
        ids,
        [c.state.label for c in changes],
        [c.state.rank for c in changes],
        [c.submitted_at for c in changes],
        [c.delivered_at for c in changes],
        [c.final_at for c in changes],
        [c.provider for c in changes],
        [c.error_code for c in changes],
        [c.price for c in changes],
        [c.parts for c in changes],
    )
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(APPLY_SQL, params)
        rows = await cur.fetchall()
    return {r[0] for r in rows}, int(rows[0][1]) if rows else 0
