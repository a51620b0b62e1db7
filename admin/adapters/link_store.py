"""Short links and their clicks: ``admin.links``, ``admin.clicks``.

Links are written in batches (one ``INSERT … SELECT FROM unnest`` per chunk of the
campaign). A code that collides with a stored one is not overwritten (that would send an
earlier recipient's link elsewhere): the row is retried with a fresh code from ``remake``,
so the caller must render texts from the rows this returns. A click is resolved and
recorded in one statement, committed before the visitor is redirected: clicks arrive at
human rates, and a click that was answered is never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import aiopg

from admin.core.links import LinkRow, is_safe_target
from gateway.adapters.pg import execute, fetch

MAX_REMAKES = 5
USER_AGENT_LENGTH = 300

_INSERT = (
    "INSERT INTO admin.links (code, url, campaign_id, contact_id, message_id) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) "
    "ON CONFLICT (code) DO NOTHING RETURNING code"
)
_CLICK = (
    "WITH link AS (SELECT code, url FROM admin.links WHERE code = %s), "
    "click AS (INSERT INTO admin.clicks (code, ip_hash, user_agent) "
    "SELECT code, %s, %s FROM link) "
    "SELECT url FROM link"
)


class LinkCollision(Exception):
    """Codes kept colliding: the code source is not random enough."""


@dataclass(frozen=True, slots=True)
class Click:
    code: str
    at: datetime
    ip_hash: str
    user_agent: str


async def save_links(
    pool: aiopg.Pool, rows: Sequence[LinkRow], remake: Callable[[], str]
) -> list[LinkRow]:
    """Store ``rows``; returns them as stored, a collided code replaced by ``remake()``."""
    for row in rows:
        if not is_safe_target(row.url):
            raise ValueError(f"link {row.code}: not an http(s) URL")
    result = list(rows)
    pending = list(range(len(result)))
    for _ in range(MAX_REMAKES):
        saved = await _insert(pool, [result[i] for i in pending])
        pending = _refused(result, pending, saved)
        for i in pending:
            result[i] = replace(result[i], code=remake())
        if not pending:
            return result
    raise LinkCollision(f"{len(pending)} codes collided {MAX_REMAKES} times")


async def attach_messages(
    pool: aiopg.Pool, codes: Sequence[str], message_ids: Sequence[int]
) -> int:
    """Name each code's message once the gateway has accepted it (a batch)."""
    return await execute(
        pool,
        "UPDATE admin.links l SET message_id = u.message_id "
        "FROM unnest(%s::text[], %s::bigint[]) AS u(code, message_id) WHERE l.code = u.code",
        (list(codes), list(message_ids)),
    )


async def resolve(pool: aiopg.Pool, code: str) -> str | None:
    rows = await fetch(pool, "SELECT url FROM admin.links WHERE code = %s", (code,))
    return str(rows[0][0]) if rows else None


async def record_click(pool: aiopg.Pool, code: str, ip_hash: str, user_agent: str) -> str | None:
    """The code's URL, the click committed with it; None (and nothing written) if unknown."""
    rows = await fetch(pool, _CLICK, (code, ip_hash, user_agent[:USER_AGENT_LENGTH]))
    return str(rows[0][0]) if rows else None


async def clicks(pool: aiopg.Pool, code: str) -> list[Click]:
    rows = await fetch(
        pool,
        "SELECT code, at, ip_hash, user_agent FROM admin.clicks WHERE code = %s ORDER BY id",
        (code,),
    )
    return [Click(*row) for row in rows]


async def _insert(pool: aiopg.Pool, rows: Sequence[LinkRow]) -> set[str]:
    columns = (
        [r.code for r in rows],
        [r.url for r in rows],
        [r.campaign_id for r in rows],
        [r.contact_id for r in rows],
        [r.message_id for r in rows],
    )
    return {row[0] for row in await fetch(pool, _INSERT, columns)}


def _refused(rows: list[LinkRow], tried: list[int], saved: set[str]) -> list[int]:
    """The indexes not stored: a code taken before, or twice in this batch (kept once)."""
    refused = []
    for i in tried:
        if rows[i].code in saved:
            saved.discard(rows[i].code)
        else:
            refused.append(i)
    return refused
