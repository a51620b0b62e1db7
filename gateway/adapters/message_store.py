"""The messages table: every hot-path write is one statement over arrays (``unnest``).

Per-row statements cap PostgreSQL near 3,700 rows/s here; ``unnest`` batches reach
~100,000 (shared/FACTS.md). Each function takes a whole batch. Monotonicity lives in
the SQL: an update applies only where ``old.state / 10 < new.state / 10``.

Queue bookkeeping (see gateway/services/dispatch.py for the theory):
``in_queue`` says an entry for the message is in a Redis stream; ``due_at`` says when
the sweeper must (re)enqueue it if not. A claim takes the message out of the queue
and leases it to a dispatcher until ``due_at``. ``sweep_at`` says when the sweeper next
looks at the message (gateway/services/sweeper.py): every statement that may leave a
message needing the sweeper sets it to now or later, and the hot path's statements leave
it alone unless the sweeper has passed it, so that their updates stay HOT (no index names
a column they change; migration 0009).

Billing (see gateway/core/billing.py): the accept transaction stores each billed
message's ``price_hold``; ``record_submitted`` and ``record_final`` settle it in the
same statement-batch and transaction that record the outcome, through
``billing_store.post``, after the message rows are locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import aiopg

from gateway.adapters import billing_store
from gateway.adapters.pg import APPLICATION_NAME, fetch
from gateway.adapters.pg_arrays import (
    bool_array,
    float_array,
    int_array,
    numeric_array,
    text_array,
    timestamptz_array,
)
from gateway.adapters.redis_queue import RedisQueue
from gateway.adapters.sql import state_label_sql
from gateway.adapters.text_cipher import seal, unseal
from gateway.adapters.webhook_store import Delivery
from gateway.core import billing
from gateway.core.lifecycle import State
from gateway.core.message import NewMessage, Outbound, Priority
from gateway.core.sweeping import Visit


@dataclass(frozen=True, slots=True)
class FinalUpdate:
    message_id: int
    state: State
    error_code: str | None = None
    done_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    message_id: int
    provider: str
    price: Decimal
    part_ids: tuple[str, ...]
    part_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Retry:
    message_id: int
    delay_s: float
    error_code: str
    attempted: bool = True  # False: deferred before any provider saw it (attempt given back)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A committed state change, for the events stream."""

    message_id: int
    client_id: int
    state: State
    at: datetime
    provider: str | None
    error_code: str | None
    price: Decimal | None = None  # what the message cost (all its parts), once submitted
    parts: int | None = None
    hook: Delivery | None = None  # its status callback, held for this process to send


# Every batched update of messages first locks its rows in id order, so that concurrent
# batches (claims, queue marks, outcomes, receipts) wait for each other, never deadlock.
LOCK_ROWS = (
    "WITH locked AS (SELECT id FROM messages WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE)"
)
# The statements that join ``messages`` to ``locked`` or to an unnest also filter it by
# ``m.id = ANY(ids)`` (``BY_IDS``): on the day-partitioned table the planner otherwise
# hash-joins a sequential scan of every partition, so each batch cost grew with the table.
BY_IDS = "m.id = ANY(%s::bigint[])"
# A hot-path statement moves ``sweep_at`` only if the sweeper may have passed it (it walks
# no further than the start of the oldest open transaction): otherwise the sweeper visits
# the message later anyway, and the unchanged column keeps the update HOT.
SWEEP_BY_NOW = "sweep_at = CASE WHEN m.sweep_at > now() THEN m.sweep_at ELSE {} END"


def _by_id(item: Submitted | Retry | FinalUpdate) -> int:
    """Every batch locks its rows in ascending id order, so that concurrent batches
    (claims, outcomes, receipts) wait for each other instead of deadlocking."""
    return item.message_id


# ``messages`` is partitioned by day (gateway/core/retention.py), so the idempotency key is
# unique in ``client_refs``, written in the same statement: a row whose key is taken is
# not inserted (one message per key across days, invariant 6); a retried batch finds its
# own rows by id. ON CONFLICT DO NOTHING also drops a key repeated inside the batch.
INSERT_SQL = """
WITH u AS (
  SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[],
                       %s::text[], %s::text[], %s::smallint[], %s::smallint[], %s::text[],
                       %s::timestamptz[], %s::timestamptz[], %s::numeric[])
    AS u(id, client_id, client_ref, destination, sender, body, encoding, parts, priority,
         callback_url, send_at, expires_at, price_hold)
), refs AS (
  INSERT INTO client_refs (client_id, client_ref, message_id)
  SELECT client_id, client_ref, id FROM u WHERE client_ref IS NOT NULL
  ON CONFLICT DO NOTHING
  RETURNING message_id
)
INSERT INTO messages (id, client_id, client_ref, destination, sender, body, encoding, parts,
                      priority, callback_url, send_at, expires_at, price_hold, due_at, sweep_at)
SELECT u.*, d.due, GREATEST(d.due, now())
FROM u CROSS JOIN LATERAL (SELECT COALESCE(u.send_at, now() + %s * interval '1 second') AS due) d
WHERE u.client_ref IS NULL OR u.id IN (SELECT message_id FROM refs)
ON CONFLICT DO NOTHING
RETURNING id
"""

PRESENT_SQL = "SELECT id FROM messages WHERE id = ANY(%s::bigint[])"

EXISTING_SQL = """
SELECT r.client_id, r.client_ref, r.message_id FROM client_refs r
JOIN unnest(%s::bigint[], %s::text[]) AS u(client_id, client_ref)
  ON r.client_id = u.client_id AND r.client_ref = u.client_ref
"""

Row = tuple[int, NewMessage, Decimal | None]  # our id, the message, its hold (None: not billed)


@dataclass(frozen=True, slots=True)
class Inserted:
    ids: dict[int, int]  # our id → stored id; they differ for duplicates (client_ref)
    new: frozenset[int]  # the ids this statement inserted


async def insert(
    pool: aiopg.Pool, rows: Sequence[tuple[int, NewMessage]], grace_s: float
) -> dict[int, int]:
    """Insert accepted messages, not billed; returns {our id: stored id}."""
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        inserted = await insert_rows(cur, [(mid, m, None) for mid, m in rows], grace_s)
    return inserted.ids


async def insert_rows(cur: Any, rows: Sequence[Row], grace_s: float) -> Inserted:
    """Inside a transaction: insert accepted messages with their holds.

    Safe to repeat: rows a lost-but-committed attempt already wrote are found by id."""
    if not rows:
        return Inserted({}, frozenset())
    await cur.execute(INSERT_SQL, (*_columns(rows), grace_s))
    new = frozenset(r[0] for r in await cur.fetchall())
    present = set(new)
    missing_ids = [mid for mid, _, _ in rows if mid not in new]
    if missing_ids:
        await cur.execute(PRESENT_SQL, (int_array(missing_ids),))
        present |= {r[0] for r in await cur.fetchall()}
    result = {mid: mid for mid, _, _ in rows if mid in present}
    missing = [(mid, m.client_id, m.client_ref) for mid, m, _ in rows if mid not in present]
    if missing:  # duplicates: their client_ref is stored already
        by_ref = await stored_refs(cur, [(cid, ref) for _, cid, ref in missing])
        result |= {mid: by_ref[(cid, ref)] for mid, cid, ref in missing if ref is not None}
    return Inserted(result, new)


async def stored_refs(
    cur: Any, refs: Sequence[tuple[int, str | None]]
) -> dict[tuple[int, str], int]:
    """The stored messages with these (client, client_ref) keys → their ids."""
    wanted = [(cid, ref) for cid, ref in refs if ref is not None]
    if not wanted:
        return {}
    await cur.execute(
        EXISTING_SQL, (int_array([c for c, _ in wanted]), text_array([r for _, r in wanted]))
    )
    return {(cid, ref): mid for cid, ref, mid in await cur.fetchall()}


def _columns(rows: Sequence[Row]) -> tuple[str, ...]:
    """INSERT_SQL's arrays, as literals (gateway/adapters/pg_arrays.py)."""
    msgs = [m for _, m, _ in rows]
    return (
        int_array([mid for mid, _, _ in rows]),
        int_array([m.client_id for m in msgs]),
        text_array([m.client_ref for m in msgs]),
        text_array([m.destination for m in msgs]),
        text_array([m.sender for m in msgs]),
        text_array([seal(m.text) for m in msgs]),
        text_array([m.encoding for m in msgs]),
        int_array([m.parts for m in msgs]),
        int_array([int(m.priority) for m in msgs]),
        text_array([m.callback_url for m in msgs]),
        timestamptz_array([m.send_at for m in msgs]),
        timestamptz_array([m.expires_at for m in msgs]),
        numeric_array([hold for _, _, hold in rows]),
    )


MARK_QUEUED_SQL = f"""
{LOCK_ROWS}
UPDATE messages m SET in_queue = true, state = GREATEST(m.state, 20),
       queued_at = COALESCE(m.queued_at, now())
FROM locked u
WHERE m.id = u.id AND m.state < 30 AND NOT m.in_queue
  AND (m.state = 10 OR m.due_at <= COALESCE(%s, now())) AND {BY_IDS}
"""


async def mark_queued(
    pool: aiopg.Pool, ids: Sequence[int], added_before: datetime | None = None
) -> None:
    """After XADD: the message is in a stream. A claim that got there first wins, and so
    does a retry it scheduled that came due before this mark: only a message due before
    the XADD (``added_before``) is marked, else its entry may be one already consumed."""
    literal = int_array(ids)
    await fetch(pool, MARK_QUEUED_SQL, (literal, added_before, literal))


UNMARK_QUEUED_SQL = f"""
{LOCK_ROWS}
UPDATE messages m SET in_queue = false, due_at = LEAST(m.due_at, now()), sweep_at = now()
FROM locked u
WHERE m.id = u.id AND m.state < 30 AND m.in_queue AND {BY_IDS}
"""


async def unmark_queued(pool: aiopg.Pool, ids: Sequence[int]) -> None:
    """Redis lost its data between the XADD and the mark: the sweeper enqueues them again."""
    literal = int_array(ids)
    await fetch(pool, UNMARK_QUEUED_SQL, (literal, literal))


async def enqueue(
    queue: RedisQueue, pool: aiopg.Pool, items: Sequence[tuple[int, Priority]]
) -> None:
    """XADD, then mark ``in_queue``; if Redis lost its data in between (a rebuild may have
    run before the mark and missed these), take the mark back."""
    if not items:
        return
    added_before = datetime.now(UTC)
    epoch = await queue.enqueue(items)
    ids = [mid for mid, _ in items]
    await mark_queued(pool, ids, added_before)
    if not await queue.still_there(epoch):
        await unmark_queued(pool, ids)


CLAIM_SQL = f"""
{LOCK_ROWS}
UPDATE messages m SET in_queue = false, due_at = now() + %s * interval '1 second',
       state = GREATEST(m.state, 20), queued_at = COALESCE(m.queued_at, now()),
       attempts = m.attempts + 1, {SWEEP_BY_NOW.format("now() + %s * interval '1 second'")}
FROM locked l
WHERE m.id = l.id AND m.state < 30
  AND (m.state = 10 OR m.in_queue OR m.due_at <= now()) AND {BY_IDS}
RETURNING m.id, m.client_id, m.destination, m.sender, m.body, m.priority, m.parts,
          m.attempts, m.expires_at
"""


async def claim(pool: aiopg.Pool, ids: Sequence[int], lease_s: float) -> list[Outbound]:
    """Lease queued messages to this dispatcher; those with an outcome or a live lease
    elsewhere are left out (invariant 3: never submit a message with an outcome)."""
    literal = int_array(ids)
    rows = await fetch(pool, CLAIM_SQL, (literal, lease_s, lease_s, literal))
    return [
        Outbound(r[0], r[1], r[2], r[3], unseal(r[4]), Priority(r[5]), r[6], r[7], r[8])
        for r in rows
    ]


SUBMITTED_SQL = f"""
{LOCK_ROWS}
UPDATE messages m SET state = 30, submitted_at = now(), provider = u.provider, price = u.price,
       {SWEEP_BY_NOW.format("now()")}
FROM unnest(%s::bigint[], %s::text[], %s::numeric[]) AS u(id, provider, price)
JOIN locked l ON l.id = u.id
WHERE m.id = u.id AND m.state < 30 AND {BY_IDS}
RETURNING m.id, m.client_id, m.submitted_at, m.provider, m.price_hold, m.price, m.parts
"""

PARTS_SQL = """
INSERT INTO message_parts (provider, provider_key, message_id, part, provider_message_id)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::smallint[], %s::text[])
ON CONFLICT (provider, provider_key) DO UPDATE
  SET message_id = EXCLUDED.message_id, part = EXCLUDED.part,
      provider_message_id = EXCLUDED.provider_message_id, status = NULL, error_code = NULL,
      done_at = NULL, submitted_at = now()
  WHERE message_parts.message_id <> EXCLUDED.message_id
"""
# Providers reuse ids (counters wrap, SMSCs restart): the newest message takes the key over.
# The same message's key again is a retried batch and changes nothing.

# A receipt overtakes its submit response by seconds; an older one with the same id is
# about an earlier message that reused it.
TAKE_EARLY_SQL = """
DELETE FROM early_receipts e USING unnest(%s::text[], %s::text[]) AS k(provider, key)
WHERE e.provider = k.provider AND e.provider_key = k.key
  AND e.received_at > now() - interval '10 minutes'
RETURNING e.provider, e.provider_message_id, e.status, e.error_code, e.done_at
"""


LOCK_PROVIDERS_SQL = """
SELECT pg_advisory_xact_lock(hashtext('smsgw-receipts:' || p))
FROM (SELECT DISTINCT unnest(%s::text[]) AS p ORDER BY 1) AS providers
"""


async def lock_providers(cur: Any, providers: Sequence[str]) -> None:
    """Serialise looking for early receipts and storing them, per provider, across processes.

    Without it a receipt could miss a part being committed by another transaction at the
    same moment, and that transaction miss the receipt, leaving it waiting for ever; with
    it the later one sees the earlier one's commit (READ COMMITTED, each statement after
    the lock takes a new snapshot). Held only for that step. Sorted against deadlocks."""
    await cur.execute(LOCK_PROVIDERS_SQL, (text_array(providers),))


async def record_submitted(
    cur: Any, batch: Sequence[Submitted], early_keys: Sequence[tuple[str, str]]
) -> tuple[list[StatusEvent], list[tuple[Any, ...]]]:
    """Inside a transaction: state → submitted, the hold settled at the price, one row per
    part, and the early receipts that were waiting for these ids (returned for the receipt
    path to apply)."""
    batch = sorted(batch, key=_by_id)
    ids = int_array([s.message_id for s in batch])
    providers = text_array([s.provider for s in batch])
    prices = numeric_array([s.price for s in batch])
    await cur.execute(SUBMITTED_SQL, (ids, ids, providers, prices, ids))
    rows = await cur.fetchall()
    events = [StatusEvent(r[0], r[1], State.SUBMITTED, r[2], r[3], None, r[5], r[6]) for r in rows]
    await billing_store.post(
        cur, [billing.settle(r[1], r[0], r[4], r[5]) for r in rows if r[4] is not None]
    )
    await cur.execute(PARTS_SQL, _parts_columns(batch))
    early: list[tuple[Any, ...]] = []
    if early_keys:
        await lock_providers(cur, [s.provider for s in batch])
        await cur.execute(
            TAKE_EARLY_SQL,
            (text_array([p for p, _ in early_keys]), text_array([k for _, k in early_keys])),
        )
        early = list(await cur.fetchall())
    return events, early


def _parts_columns(batch: Sequence[Submitted]) -> tuple[str, ...]:
    """PARTS_SQL's arrays. One row per key: an SMSC answering the same id twice in a
    batch must not fail it."""
    parts = {
        (s.provider, key): (s.message_id, n + 1, pid)
        for s in batch
        for n, (pid, key) in enumerate(zip(s.part_ids, s.part_keys, strict=True))
    }
    return (
        text_array([provider for provider, _ in parts]),
        text_array([key for _, key in parts]),
        int_array([mid for mid, _, _ in parts.values()]),
        int_array([n for _, n, _ in parts.values()]),
        text_array([pid for _, _, pid in parts.values()]),
    )


RETRY_SQL = f"""
{LOCK_ROWS}
UPDATE messages m SET due_at = now() + u.delay * interval '1 second', in_queue = false,
       sweep_at = now() + GREATEST(u.delay, 0) * interval '1 second', error_code = u.code,
       attempts = m.attempts - CASE WHEN u.attempted THEN 0 ELSE 1 END
FROM unnest(%s::bigint[], %s::float8[], %s::text[], %s::bool[]) AS u(id, delay, code, attempted)
JOIN locked l ON l.id = u.id
WHERE m.id = u.id AND m.state < 30 AND {BY_IDS}
"""


async def schedule_retries(cur: Any, batch: Sequence[Retry]) -> None:
    batch = sorted(batch, key=_by_id)
    ids = int_array([r.message_id for r in batch])
    delays = float_array([r.delay_s for r in batch])
    codes = text_array([r.error_code for r in batch])
    attempted = bool_array([r.attempted for r in batch])
    await cur.execute(RETRY_SQL, (ids, ids, delays, codes, attempted, ids))


# ``was``: the state before, read under the lock; a hold is refunded only if the message
# never reached a provider (a submitted one settled its hold at submission).
FINAL_SQL = f"""
WITH locked AS (
  SELECT id, state AS was FROM messages WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE
), u AS (
  SELECT * FROM unnest(%s::bigint[], %s::smallint[], %s::text[], %s::timestamptz[])
    AS u(id, state, error_code, done_at)
), upd AS (
  UPDATE messages m SET state = u.state, error_code = COALESCE(u.error_code, m.error_code),
         done_at = COALESCE(u.done_at, now()), in_queue = false,
         parts_delivered = CASE WHEN u.state = {State.DELIVERED.value} THEN m.parts
                                ELSE m.parts_delivered END
  FROM u JOIN locked l ON l.id = u.id
  WHERE m.id = u.id AND m.state / 10 < u.state / 10 AND {BY_IDS}
  RETURNING m.*, l.was
), hooks AS (
  INSERT INTO webhook_outbox (message_id, client_id, url, payload, next_at)
  SELECT id, client_id, callback_url, json_build_object(
      'type', 'message.status',
      'timestamp', now(),
      'data', json_build_object(
          'id', id::text, 'client_ref', client_ref, 'status', {state_label_sql("state")},
          'to', destination, 'parts', parts, 'price', price, 'provider', provider,
          'error_code', error_code, 'accepted_at', accepted_at,
          'submitted_at', submitted_at, 'done_at', done_at))::text,
      now() + %s * interval '1 second'
  FROM upd WHERE callback_url IS NOT NULL
  RETURNING id, message_id, client_id, url, payload
)
SELECT u.id, u.client_id, u.state, u.done_at, u.provider, u.error_code,
       CASE WHEN u.was < {State.SUBMITTED.value} THEN u.price_hold END, u.price, u.parts,
       h.id, h.url, h.payload, c.webhook_secret
FROM upd u
LEFT JOIN hooks h ON h.message_id = u.id AND %s > 0
LEFT JOIN clients c ON c.id = h.client_id
"""


async def record_final(
    cur: Any, batch: Sequence[FinalUpdate], hold_hooks_s: float = 0.0
) -> list[StatusEvent]:
    """Move messages to a final state (monotonic), schedule their webhooks and refund the
    holds of those never submitted, atomically.

    ``hold_hooks_s`` > 0: the new outbox rows come due only after that long, and each
    event carries its ``hook``, for this process to send at once (gateway.services.
    webhooks); should it die first, the poller sends them when the hold ends."""
    batch = sorted(batch, key=_by_id)
    ids = int_array([f.message_id for f in batch])
    states = int_array([int(f.state) for f in batch])
    codes = text_array([f.error_code for f in batch])
    done = timestamptz_array([f.done_at for f in batch])
    await cur.execute(FINAL_SQL, (ids, ids, states, codes, done, ids, hold_hooks_s, hold_hooks_s))
    rows = await cur.fetchall()
    await billing_store.post(
        cur, [billing.refund(r[1], r[0], r[6]) for r in rows if r[6] is not None]
    )
    return [
        StatusEvent(r[0], r[1], State(r[2]), r[3], r[4], r[5], r[7], r[8], _hook(r)) for r in rows
    ]


def _hook(row: tuple[Any, ...]) -> Delivery | None:
    outbox_id, url, payload, secret = row[9:13]
    return None if outbox_id is None else Delivery(outbox_id, row[0], url, payload, 0, secret)


# The sweeper walks no further than the start of the oldest open transaction of the
# gateway's connections: every statement that sets ``sweep_at`` sets it to its own now()
# or later, so a row it writes, not yet visible, lies beyond. A margin (``margin_s``, a
# second; tests that read their own writes at once pass 0) covers the moment between a
# statement's now() and its transaction showing here, and small clock steps. A connection
# of another role shows no state: then the margin is a minute (every gateway process
# should use one role, or one granted pg_read_all_stats).
SWEEP_HORIZON_SQL = """
SELECT LEAST(now(), min(xact_start))
       - CASE WHEN bool_or(state IS NULL) THEN interval '60 seconds'
              ELSE %s * interval '1 second' END,
       bool_or(state IS NULL)
FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()
"""

# The rows after the cursor, in order: the not final ones, then a marker for the last one
# read (its key, and how many were read in ``read``, NULL on the others). Those waiting in
# a stream are left out here already (``decide`` leaves them alone): a backlog of a million
# would otherwise cross to the sweeper row by row.
SWEEP_SQL = """
WITH scan AS MATERIALIZED (
  SELECT id, sweep_at, state, in_queue, priority, due_at, submitted_at, expires_at
  FROM messages WHERE (sweep_at, id) > (%s, %s) AND sweep_at < %s
  ORDER BY sweep_at, id LIMIT %s
)
SELECT id, state, in_queue, priority, due_at, submitted_at, expires_at, now(), NULL::bigint
FROM scan WHERE state < 40 AND NOT (state < 30 AND in_queue)
UNION ALL
(SELECT id, NULL, NULL, NULL, sweep_at, NULL, NULL, now(), (SELECT count(*) FROM scan)
 FROM scan ORDER BY sweep_at DESC, id DESC LIMIT 1)
"""

SweepKey = tuple[datetime, int]  # (sweep_at, id): the sweeper's order


@dataclass(frozen=True, slots=True)
class SweepBatch:
    visits: list[Visit]
    now: datetime | None  # the database's clock (None: nothing read)
    last: SweepKey | None  # the last row read (None: none)
    read: int


async def sweep_horizon(pool: aiopg.Pool, margin_s: float = 1.0) -> tuple[datetime, bool]:
    """Where this sweep must stop, and whether some gateway connection was not visible."""
    [(horizon, blind)] = await fetch(pool, SWEEP_HORIZON_SQL, (margin_s, APPLICATION_NAME))
    return cast(datetime, horizon), bool(blind)


async def sweep_cursor(pool: aiopg.Pool) -> SweepKey:
    rows = await fetch(pool, "SELECT at, id FROM sweep_cursor")
    return rows[0][0], int(rows[0][1])


async def advance_sweep_cursor(pool: aiopg.Pool, to: SweepKey) -> None:
    """Forward only: two sweepers may run at once."""
    await fetch(
        pool, "UPDATE sweep_cursor SET at = %s, id = %s WHERE (at, id) < (%s, %s)", (*to, *to)
    )


async def read_sweep(pool: aiopg.Pool, after: SweepKey, before: datetime, limit: int) -> SweepBatch:
    """The messages to visit after ``after`` and before ``before``, at most ``limit`` read."""
    rows = await fetch(pool, SWEEP_SQL, (*after, before, limit))
    markers = [r for r in rows if r[8] is not None]
    if not markers:
        return SweepBatch([], None, None, 0)
    [marker] = markers
    return SweepBatch(
        [
            Visit(r[0], State(r[1]), r[2], Priority(r[3]), r[4], r[5], r[6])
            for r in rows
            if r[8] is None
        ],
        marker[7],
        (marker[4], marker[0]),
        int(marker[8]),
    )


SWEEP_LATER_SQL = f"""
{LOCK_ROWS}
UPDATE messages m SET sweep_at = GREATEST(now(), CASE WHEN m.state = 30 THEN
         LEAST(m.submitted_at + %s * interval '1 second', m.expires_at + %s * interval '1 second')
       ELSE m.due_at END)
FROM locked l
WHERE m.id = l.id AND m.state < 40 AND NOT (m.state < 30 AND m.in_queue) AND {BY_IDS}
"""


async def sweep_later(
    pool: aiopg.Pool, ids: Sequence[int], timeout_s: float, grace_s: float
) -> None:
    """Visit these again when they next need it, as they are now (under the row lock): a
    retry or a receipt that came since the read is not undone."""
    literal = int_array(ids)  # LOCK_ROWS takes them in id order
    await fetch(pool, SWEEP_LATER_SQL, (literal, timeout_s, grace_s, literal))


async def forget_queue(pool: aiopg.Pool) -> int:
    """Redis lost its data: every message it held must be enqueued again."""
    rows = await fetch(
        pool,
        "WITH r AS (UPDATE messages SET in_queue = false, due_at = LEAST(due_at, now()), "
        "sweep_at = now() "
        "WHERE id IN (SELECT id FROM messages WHERE in_queue AND state < 30 ORDER BY id "
        "FOR UPDATE) AND in_queue RETURNING 1) SELECT count(*) FROM r",  # id order: no deadlock
    )
    return int(rows[0][0])


async def forget_early_receipts(pool: aiopg.Pool, older_than_s: float) -> None:
    await fetch(
        pool,
        "DELETE FROM early_receipts WHERE received_at < now() - %s * interval '1 second'",
        (older_than_s,),
    )


MESSAGE_SQL = f"""
SELECT id, client_id, client_ref, destination, sender, encoding, parts, priority,
       {state_label_sql("state")}, provider, price, error_code, attempts, send_at, expires_at,
       accepted_at, queued_at, submitted_at, done_at, callback_url, parts_delivered, price_hold
FROM messages WHERE id = %s AND client_id = %s
"""


async def get(pool: aiopg.Pool, message_id: int, client_id: int) -> dict[str, Any] | None:
    rows = await fetch(pool, MESSAGE_SQL, (message_id, client_id))
    if not rows:
        return None
    keys = [
        "id",
        "client_id",
        "client_ref",
        "to",
        "from",
        "encoding",
        "parts",
        "priority",
        "status",
        "provider",
        "price",
        "error_code",
        "attempts",
        "send_at",
        "expires_at",
        "accepted_at",
        "queued_at",
        "submitted_at",
        "done_at",
        "callback_url",
        "parts_delivered",
        "price_hold",
    ]
    return dict(zip(keys, rows[0], strict=True))
