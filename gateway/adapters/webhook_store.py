"""The webhook outbox: claimed in batches with a lease (or written leased, for the process
that wrote them: gateway.services.webhooks), results written in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiopg

from gateway.adapters.pg import execute, fetch


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    message_id: int
    url: str
    payload: str
    attempts: int
    secret: str


CLAIM_SQL = """
UPDATE webhook_outbox w SET next_at = now() + %s * interval '1 second'
FROM clients c
WHERE w.id IN (
    SELECT id FROM webhook_outbox
    WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_at <= now()
    ORDER BY next_at LIMIT %s FOR UPDATE SKIP LOCKED)
  AND c.id = w.client_id
RETURNING w.id, w.message_id, w.url, w.payload, w.attempts, c.webhook_secret
"""


async def claim(pool: aiopg.Pool, limit: int, lease_s: float) -> list[Delivery]:
    return [Delivery(*row) for row in await fetch(pool, CLAIM_SQL, (lease_s, limit))]


DELIVERED_SQL = """
UPDATE webhook_outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY(%s::bigint[])
"""

FAILED_SQL = """
UPDATE webhook_outbox w SET attempts = w.attempts + 1, last_error = u.error,
       next_at = now() + u.delay * interval '1 second',
       gave_up_at = COALESCE(w.gave_up_at,  -- erased meanwhile: stays given up
                             CASE WHEN w.created_at < now() - %s * interval '1 hour' THEN now() END)
FROM unnest(%s::bigint[], %s::text[], %s::float8[]) AS u(id, error, delay)
WHERE w.id = u.id
"""


async def record(
    pool: aiopg.Pool,
    delivered: Sequence[int],
    failed: Sequence[tuple[int, str, float]],
    give_up_after_h: float,
) -> None:
    if delivered:
        await execute(pool, DELIVERED_SQL, (list(delivered),))
    if failed:
        ids, errors, delays = (list(col) for col in zip(*failed, strict=True))
        await execute(pool, FAILED_SQL, (give_up_after_h, ids, errors, delays))


RELEASE_SQL = """
UPDATE webhook_outbox SET next_at = now()
WHERE id = ANY(%s::bigint[]) AND delivered_at IS NULL AND gave_up_at IS NULL
"""


async def release(pool: aiopg.Pool, ids: Sequence[int]) -> None:
    """Leased rows due at once: their sender is stopping before it sent them."""
    await execute(pool, RELEASE_SQL, (list(ids),))
