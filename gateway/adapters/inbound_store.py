"""Inbound parts, messages and the opt-out list in PostgreSQL; every write is one statement
per batch.

Joining. Parts of one message may be written at the same moment by two processes, each
seeing only its own uncommitted part: neither would find the message complete. So a batch
first takes a transaction-scoped advisory lock per message key (sorted, so two batches
never deadlock), then inserts its parts, then joins every message of the batch that now
has all its parts. The lock is held to commit, so whoever comes second sees the first's
parts. Expiry takes the same locks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiopg

from gateway.adapters.pg import execute, fetch
from gateway.adapters.pg_arrays import text_array
from gateway.adapters.text_cipher import seal, unseal
from gateway.core.inbound import Decided, Piece

_LOCK_CLASS = 0x494E  # "IN": the advisory lock namespace of inbound message keys

PieceKey = tuple[str, str, str, int, int]


@dataclass(frozen=True, slots=True)
class NewInbound:
    """A decided message with its id and the JSON body to forward (and publish)."""

    id: int
    decided: Decided
    payload: str


def _key_text(key: PieceKey) -> str:
    return "\x1f".join(map(str, key))


LOCK_SQL = """
SELECT count(pg_advisory_xact_lock(%s, h))
FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(%s::text[]) AS k ORDER BY 1) AS s
"""


async def _lock(cur: Any, keys: Iterable[PieceKey]) -> None:
    await cur.execute(LOCK_SQL, (_LOCK_CLASS, [_key_text(k) for k in keys]))


INSERT_PARTS_SQL = """
INSERT INTO inbound_parts AS p
    (provider, source, destination, ref, total, seq, data_coding, payload, received_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::smallint[],
                     %s::smallint[], %s::smallint[], %s::bytea[], %s::timestamptz[])
ON CONFLICT (provider, source, destination, ref, total, seq) DO UPDATE
    SET data_coding = excluded.data_coding, payload = excluded.payload,
        received_at = excluded.received_at, stored_at = now(), joined_at = NULL
    WHERE p.joined_at IS NOT NULL AND p.payload <> sha256(excluded.payload)
"""

JOIN_SQL = """
WITH k AS (
    SELECT DISTINCT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::smallint[])
        AS k(provider, source, destination, ref, total)
), done AS (
    SELECT p.provider, p.source, p.destination, p.ref, p.total
    FROM inbound_parts p JOIN k USING (provider, source, destination, ref, total)
    WHERE p.joined_at IS NULL
    GROUP BY 1, 2, 3, 4, 5 HAVING count(*) = p.total
), parts AS (
    SELECT p.* FROM inbound_parts p JOIN done USING (provider, source, destination, ref, total)
    WHERE p.joined_at IS NULL
)
UPDATE inbound_parts p SET joined_at = now(), payload = sha256(parts.payload)
FROM parts
WHERE (p.provider, p.source, p.destination, p.ref, p.total, p.seq)
    = (parts.provider, parts.source, parts.destination, parts.ref, parts.total, parts.seq)
RETURNING parts.provider, parts.source, parts.destination, parts.ref, parts.total, parts.seq,
          parts.data_coding, parts.payload, parts.received_at
"""


async def add_parts(cur: Any, pieces: Sequence[Piece]) -> list[list[Piece]]:
    """Store parts of concatenated messages; returns the parts of each message they complete.
    A part repeated (the SMSC sent it again) is ignored, also after its message was joined."""
    unique = list({(p.key, p.seq): p for p in pieces}.values())
    if not unique:
        return []
    keys = sorted({p.key for p in unique})
    await _lock(cur, keys)
    await cur.execute(INSERT_PARTS_SQL, _columns(unique))
    await cur.execute(JOIN_SQL, tuple(list(col) for col in zip(*keys, strict=True)))
    return _groups(await cur.fetchall())


def _columns(pieces: Sequence[Piece]) -> tuple[list[Any], ...]:
    return (
        [p.provider for p in pieces],
        [p.source for p in pieces],
        [p.destination for p in pieces],
        [p.ref for p in pieces],
        [p.total for p in pieces],
        [p.seq for p in pieces],
        [p.data_coding for p in pieces],
        [p.payload for p in pieces],
        [p.received_at for p in pieces],
    )


def _groups(rows: Iterable[Sequence[Any]]) -> list[list[Piece]]:
    groups: dict[PieceKey, list[Piece]] = {}
    for provider, source, dest, ref, total, seq, dc, payload, received in rows:
        piece = Piece(provider, source, dest, ref, total, seq, dc, bytes(payload), received)
        groups.setdefault(piece.key, []).append(piece)
    return list(groups.values())


EXPIRED_KEYS_SQL = """
SELECT provider, source, destination, ref, total FROM inbound_parts WHERE joined_at IS NULL
GROUP BY 1, 2, 3, 4, 5 HAVING min(stored_at) < now() - %s * interval '1 second' LIMIT %s
"""

EXPIRE_SQL = """
DELETE FROM inbound_parts p
USING unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::smallint[])
    AS k(provider, source, destination, ref, total)
WHERE (p.provider, p.source, p.destination, p.ref, p.total)
    = (k.provider, k.source, k.destination, k.ref, k.total)
  AND p.joined_at IS NULL
RETURNING p.provider, p.source, p.destination, p.ref, p.total, p.seq, p.data_coding,
          p.payload, p.received_at
"""

FORGET_JOINED_SQL = """
DELETE FROM inbound_parts WHERE joined_at < now() - %s * interval '1 second'
"""


async def expire_parts(cur: Any, ttl_s: float, limit: int) -> list[list[Piece]]:
    """Take the parts of messages whose first part came over ``ttl_s`` ago and that are still
    incomplete, grouped by message (to be stored as incomplete messages); forget joined
    parts as old."""
    await cur.execute(FORGET_JOINED_SQL, (ttl_s,))
    await cur.execute(EXPIRED_KEYS_SQL, (ttl_s, limit))
    keys = sorted(tuple(row) for row in await cur.fetchall())
    if not keys:
        return []
    await _lock(cur, keys)
    await cur.execute(EXPIRE_SQL, tuple(list(c) for c in zip(*keys, strict=True)))
    return _groups(await cur.fetchall())


RECORD_SQL = """
WITH u AS (
    SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
                         %s::smallint[], %s::smallint[], %s::timestamptz[], %s::text[],
                         %s::text[], %s::text[], %s::text[])
        AS u(id, provider, source, destination, body, parts, total, received_at, action,
             client, url, payload)
), m AS (
    INSERT INTO inbound_messages
        (id, provider, source, destination, body, parts, total, received_at, action, client_id)
    SELECT u.id, u.provider, u.source, u.destination, u.body, u.parts, u.total, u.received_at,
           u.action, c.id
    FROM u LEFT JOIN clients c ON c.name = u.client
    ON CONFLICT (id) DO NOTHING
    RETURNING id, client_id
)
INSERT INTO webhook_outbox (message_id, client_id, url, payload)
SELECT m.id, m.client_id, u.url, u.payload FROM m JOIN u USING (id)
WHERE m.client_id IS NOT NULL
RETURNING message_id
"""


async def record(cur: Any, items: Sequence[NewInbound]) -> int:
    """Store messages and schedule their forwarding (in the webhook outbox, signed with the
    rule's client's secret); returns how many forwards were scheduled. A message id already
    stored (a retried batch) is skipped with its forward."""
    if not items:
        return 0
    columns = (
        [i.id for i in items],
        *_message_columns([i.decided for i in items]),
        [i.payload for i in items],
    )
    await cur.execute(RECORD_SQL, columns)
    return len(await cur.fetchall())


def _message_columns(decided: Sequence[Decided]) -> tuple[list[Any], ...]:
    messages = [d.message for d in decided]
    return (
        [m.provider for m in messages],
        [m.source for m in messages],
        [m.destination for m in messages],
        [seal(m.text) for m in messages],
        [m.parts for m in messages],
        [m.total for m in messages],
        [m.received_at for m in messages],
        [d.action.value if d.action else None for d in decided],
        [d.rule.client if d.rule else None for d in decided],
        [d.rule.url if d.rule else None for d in decided],
    )


OPT_SQL = """
WITH u AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[],
                         %s::text[])
        AS u(number, action, keyword, inbound_id, at, client)
), outs AS (
    INSERT INTO opt_outs (number, since, via, keyword, inbound_id, client_id)
    SELECT u.number, u.at, 'sms', u.keyword, u.inbound_id, c.id
    FROM u LEFT JOIN clients c ON c.name = u.client WHERE u.action = 'opt_out'
    ON CONFLICT (number) DO NOTHING
), hashed AS (  -- an erased person's START lifts their hashed opt-out too
    DELETE FROM opt_out_hashes h USING u WHERE u.action = 'opt_in'
      AND h.number_hash = sha256((SELECT key FROM erasure_key) || convert_to(u.number, 'UTF8'))
)
DELETE FROM opt_outs o USING u WHERE u.action = 'opt_in' AND o.number = u.number
"""


async def apply_opt_changes(cur: Any, changes: Sequence[NewInbound]) -> None:
    """Opt-outs and opt-ins by SMS; one per number (``core.inbound.opt_changes``). A number
    already on the list keeps the date it first opted out."""
    if not changes:
        return
    await cur.execute(
        OPT_SQL,
        (
            [c.decided.message.source for c in changes],
            [c.decided.action.value if c.decided.action else None for c in changes],
            [c.decided.message.text.strip()[:64] for c in changes],
            [c.id for c in changes],
            [c.decided.message.received_at for c in changes],
            [c.decided.rule.client if c.decided.rule else None for c in changes],
        ),
    )


# -- the opt-out list, for the dispatcher and the API ---------------------------------------


async def opted_out(pool: aiopg.Pool, numbers: Iterable[str]) -> set[str]:
    """Which of ``numbers`` (E.164) are on the opt-out list: one query per batch."""
    wanted = sorted(set(numbers))
    if not wanted:
        return set()
    literal = text_array(wanted)  # the dispatch hot path: one string, not a list to adapt
    rows = await fetch(pool, OPTED_OUT_SQL, (literal, literal))
    return {row[0] for row in rows}


# An erased person's opt-out is kept as a keyed hash (gateway/adapters/erasure_store.py).
OPTED_OUT_SQL = """
SELECT number FROM opt_outs WHERE number = ANY(%s::text[])
UNION
SELECT n FROM unnest(%s::text[]) AS n JOIN opt_out_hashes h
  ON h.number_hash = sha256((SELECT key FROM erasure_key) || convert_to(n, 'UTF8'))
"""


ADD_SQL = """
INSERT INTO opt_outs (number, via, client_id) SELECT n, 'api', %s FROM unnest(%s::text[]) AS n
ON CONFLICT (number) DO NOTHING
"""


async def add(pool: aiopg.Pool, numbers: Iterable[str], client_id: int | None) -> int:
    """Put numbers on the list on a client's word; returns how many were not on it yet."""
    return await execute(pool, ADD_SQL, (client_id, sorted(set(numbers))))


@dataclass(frozen=True, slots=True)
class OptOut:
    number: str
    since: datetime
    via: str
    keyword: str | None
    client_id: int | None


async def get(pool: aiopg.Pool, number: str) -> OptOut | None:
    rows = await fetch(
        pool,
        "SELECT number, since, via, keyword, client_id FROM opt_outs WHERE number = %s",
        (number,),
    )
    return OptOut(*rows[0]) if rows else None


async def remove(pool: aiopg.Pool, number: str, client_id: int | None = None) -> bool:
    """Take a number off the list; with ``client_id``, only an entry that client added
    through the API (a subscriber's own STOP is undone by the subscriber's START)."""
    if client_id is None:
        return await execute(pool, "DELETE FROM opt_outs WHERE number = %s", (number,)) > 0
    deleted = await execute(
        pool,
        "DELETE FROM opt_outs WHERE number = %s AND via = 'api' AND client_id = %s",
        (number, client_id),
    )
    return deleted > 0


async def listing(
    pool: aiopg.Pool, client_id: int | None, after: str = "", limit: int = 100
) -> list[OptOut]:
    """Entries in number order after ``after``: a client's own (added by it, or a STOP sent
    to its number), or every entry when ``client_id`` is None."""
    rows = await fetch(
        pool,
        "SELECT number, since, via, keyword, client_id FROM opt_outs "
        "WHERE (%s::bigint IS NULL OR client_id = %s) AND number > %s ORDER BY number LIMIT %s",
        (client_id, client_id, after, limit),
    )
    return [OptOut(*row) for row in rows]


# -- inbound messages, for the API -------------------------------------------------------------


async def recent(
    pool: aiopg.Pool, client_id: int, before: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """A client's inbound messages, newest first (ids are time-ordered)."""
    rows = await fetch(
        pool,
        "SELECT id, source, destination, body, parts, total, action, received_at "
        "FROM inbound_messages WHERE client_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
        (client_id, before if before is not None else 2**63 - 1, limit),
    )
    keys = ("id", "from", "to", "text", "parts", "total", "action", "received_at")
    return [dict(zip(keys, row, strict=True)) | {"text": unseal(row[3])} for row in rows]
