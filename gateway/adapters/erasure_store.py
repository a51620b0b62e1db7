"""Erasure in PostgreSQL: one person's number and texts, in one transaction.

What goes where (see README "Retention and erasure"):

- ``messages`` to the number: unsent ones are finished as rejected (``erased``: their
  holds are refunded by the usual path); every one keeps its row (aggregates, billing)
  with the text emptied and the number masked;
- ``webhook_outbox`` rows about those messages or holding the number: payload replaced,
  not sent any more;
- ``inbound_messages`` from or to the number: scrubbed like messages; ``inbound_parts``
  deleted; ``otp_challenges`` to the number deleted (when the table exists);
- ``client_refs`` (and the message's ``client_ref``) holding the number: a keyed hash;
- ``opt_outs``: the row becomes a keyed hash in ``opt_out_hashes``, so the opt-out is
  still honoured without the number being kept;
- ``audit_log``: one row with the keyed hash of the number and the counts.

Rows are locked in id order first, like every batched update of messages.
"""

from __future__ import annotations

import json
from typing import Any

import aiopg

from gateway.adapters import message_store
from gateway.core.erasure import Subject
from gateway.core.lifecycle import State

ERASED = "erased"
HASH_SQL = "sha256((SELECT key FROM erasure_key) || convert_to(%s, 'UTF8'))"

LOCK_MESSAGES_SQL = "SELECT id, state FROM messages WHERE destination = %s ORDER BY id FOR UPDATE"

SCRUB_MESSAGES_SQL = "UPDATE messages SET body = '', destination = %s WHERE id = ANY(%s::bigint[])"

WEBHOOKS_SQL = """
UPDATE webhook_outbox SET payload = '{"erased":true}', last_error = 'erased',
       gave_up_at = CASE WHEN delivered_at IS NULL THEN COALESCE(gave_up_at, now())
                         ELSE gave_up_at END
WHERE message_id = ANY(%s::bigint[]) OR payload ~ %s
"""

INBOUND_SQL = """
WITH locked AS (
  SELECT id FROM inbound_messages WHERE source = %s OR destination = %s ORDER BY id FOR UPDATE
)
UPDATE inbound_messages m SET source = CASE WHEN m.source = %s THEN %s ELSE m.source END,
       destination = CASE WHEN m.destination = %s THEN %s ELSE m.destination END, body = ''
FROM locked l WHERE m.id = l.id
RETURNING m.id
"""

OPT_OUT_SQL = f"""
WITH gone AS (DELETE FROM opt_outs WHERE number = %s RETURNING since, via, client_id)
INSERT INTO opt_out_hashes (number_hash, since, via, client_id)
SELECT {HASH_SQL}, since, via, client_id FROM gone
ON CONFLICT (number_hash) DO NOTHING
"""

# A client may have put the number in its idempotency key: the key becomes a keyed hash.
REF_HASH = (
    "'erased:' || encode(sha256((SELECT key FROM erasure_key) || convert_to({}, 'UTF8')), 'hex')"
)

CLIENT_REFS_SQL = f"""
UPDATE client_refs SET client_ref = {REF_HASH.format("client_ref")}
WHERE client_ref ~ %s RETURNING message_id
"""

MESSAGE_REFS_SQL = f"""
WITH locked AS (SELECT id FROM messages WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE)
UPDATE messages m SET client_ref = {REF_HASH.format("m.client_ref")}
FROM locked l WHERE m.id = l.id AND m.client_ref ~ %s
"""

AUDIT_SQL = f"""
INSERT INTO audit_log (action, actor, reason, subject_hash, counts)
VALUES ('erase', %s, %s, {HASH_SQL}, %s::jsonb)
RETURNING id
"""


async def erase(
    pool: aiopg.Pool, subject: Subject, actor: str, reason: str | None
) -> tuple[int, dict[str, int]]:
    """Erase the subject's data; returns the audit row's id and the counts per table."""
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        counts = {"messages": len(ids := await _messages(cur, subject))}
        counts["client_refs"] = await _client_refs(cur, subject)
        counts["webhook_outbox"] = await _rowcount(
            cur, WEBHOOKS_SQL, (ids, subject.pattern.pattern)
        )
        counts["inbound_messages"] = await _inbound(cur, subject)
        counts["inbound_parts"] = await _rowcount(
            cur,
            "DELETE FROM inbound_parts WHERE source = %s OR destination = %s",
            (subject.number, subject.number),
        )
        counts["opt_outs"] = await _rowcount(cur, OPT_OUT_SQL, (subject.number, subject.number))
        counts |= await _otp(cur, subject)
        redacted = subject.redact(reason) if reason else None
        await cur.execute(AUDIT_SQL, (actor, redacted, subject.number, json.dumps(counts)))
        audit_id = int((await cur.fetchone())[0])
    return audit_id, counts


async def _messages(cur: Any, subject: Subject) -> list[int]:
    """Finish the unsent ones, then scrub all; returns their ids."""
    await cur.execute(LOCK_MESSAGES_SQL, (subject.number,))
    rows = await cur.fetchall()
    unsent = [
        message_store.FinalUpdate(mid, State.REJECTED, ERASED)
        for mid, state in rows
        if state < State.SUBMITTED
    ]
    if unsent:
        await message_store.record_final(cur, unsent)
    ids = [row[0] for row in rows]
    await cur.execute(SCRUB_MESSAGES_SQL, (subject.masked, ids))
    return ids


async def _client_refs(cur: Any, subject: Subject) -> int:
    await cur.execute(CLIENT_REFS_SQL, (subject.pattern.pattern,))
    ids = sorted(row[0] for row in await cur.fetchall())
    if ids:
        await cur.execute(MESSAGE_REFS_SQL, (ids, subject.pattern.pattern))
    return len(ids)


async def _inbound(cur: Any, subject: Subject) -> int:
    n, masked = subject.number, subject.masked
    await cur.execute(INBOUND_SQL, (n, n, n, masked, n, masked))
    return len(await cur.fetchall())


async def _otp(cur: Any, subject: Subject) -> dict[str, int]:
    await cur.execute("SELECT to_regclass('otp_challenges') IS NOT NULL")
    if not (await cur.fetchone())[0]:
        return {}
    deleted = await _rowcount(
        cur, "DELETE FROM otp_challenges WHERE destination = %s", (subject.number,)
    )
    return {"otp_challenges": deleted}


async def _rowcount(cur: Any, sql: str, params: tuple[Any, ...]) -> int:
    await cur.execute(sql, params)
    return int(cur.rowcount)
