"""Applying a batch of receipts in one transaction.

1. match each receipt to a part (exact key first, then its hex/decimal forms);
2. record the outcome on parts that have none yet (the first final receipt wins, so a
   duplicate changes nothing);
3. recompute the touched messages' outcome from all their parts and move them
   (monotonic, with their webhooks) through ``message_store.record_final``;
4. keep receipts that matched no open part in ``early_receipts``: their submit response
   may not be recorded yet; ``record_submitted`` picks them up when it is (the sweeper
   deletes them after a day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.adapters.message_store import FinalUpdate, StatusEvent, lock_providers, record_final
from gateway.adapters.pg_arrays import int_array, text_array, timestamptz_array
from gateway.core.lifecycle import State
from gateway.core.receipts import message_outcome


@dataclass(frozen=True, slots=True)
class ReceiptIn:
    provider: str
    provider_message_id: str
    keys: tuple[str, ...]  # best first; keys[0] is where an unmatched one waits
    state: State
    error_code: str | None
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    events: list[StatusEvent]
    matched: int
    early: int


# Both statements look each key up by the primary key, one at a time (LATERAL … LIMIT 1
# cannot be flattened into a join). As a plain join the plan followed the statistics:
# with few open parts at the last ANALYZE, PostgreSQL chose a nested loop over a seq scan
# of message_parts for every receipt batch: 3.7 s per 500 receipts at 20,000 open parts
# (measured), where the lookups take 16 ms whatever the statistics say.
MATCH_SQL = """
SELECT DISTINCT ON (r.idx) r.idx, p.provider_key, p.status IS NULL
FROM unnest(%s::int[], %s::int[], %s::text[], %s::text[]) AS r(idx, ord, provider, key)
CROSS JOIN LATERAL (
  SELECT provider_key, status FROM message_parts
  WHERE provider = r.provider AND provider_key = r.key LIMIT 1
) p
ORDER BY r.idx, r.ord
"""

# By the row's address (ctid) found under the key: a part another transaction closed
# meanwhile has a new address and is skipped, as ``status IS NULL`` would skip it.
UPDATE_PARTS_SQL = """
WITH u AS MATERIALIZED (
  SELECT * FROM unnest(%s::text[], %s::text[], %s::smallint[], %s::text[], %s::timestamptz[])
    AS u(provider, key, status, err, done_at)
), hit AS MATERIALIZED (
  SELECT o.tid, u.status, u.err, u.done_at FROM u
  CROSS JOIN LATERAL (
    SELECT ctid AS tid FROM message_parts
    WHERE provider = u.provider AND provider_key = u.key AND status IS NULL LIMIT 1
  ) o
)
UPDATE message_parts p SET status = hit.status, error_code = hit.err, done_at = hit.done_at
FROM hit WHERE p.ctid = hit.tid AND p.status IS NULL
RETURNING p.message_id
"""

LOCK_MESSAGES_SQL = "SELECT id FROM messages WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE"

# A message is as many parts as the provider gave ids for: an SMPP provider one per
# segment, an HTTP provider usually one for the whole message. Each message's parts are
# counted through the message_id index (LATERAL): joined and grouped, the planner chose a
# seq scan of message_parts while it was small (4.8 ms per 100 receipts at 50,000 parts).
OUTCOME_SQL = f"""
SELECT m.id, c.parts, c.delivered, c.failure, c.error, c.done_at
FROM messages m
CROSS JOIN LATERAL (
  SELECT count(*) AS parts,
         count(*) FILTER (WHERE p.status = {State.DELIVERED.value}) AS delivered,
         min(p.status) FILTER (WHERE p.status <> {State.DELIVERED.value}) AS failure,
         max(p.error_code) AS error, max(p.done_at) AS done_at
  FROM message_parts p WHERE p.message_id = m.id
) c
WHERE m.id = ANY(%s::bigint[]) AND m.state < 40 AND c.parts > 0
"""

EARLY_SQL = """
INSERT INTO early_receipts (provider, provider_key, provider_message_id, status, error_code,
                            done_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::smallint[], %s::text[],
                     %s::timestamptz[])
ON CONFLICT (provider, provider_key) DO UPDATE
  SET provider_message_id = EXCLUDED.provider_message_id, status = EXCLUDED.status,
      error_code = EXCLUDED.error_code, done_at = EXCLUDED.done_at, received_at = now()
"""


async def apply_receipts(
    cur: Any, batch: Sequence[ReceiptIn], hold_hooks_s: float = 0.0
) -> ReceiptOutcome:
    """Inside a transaction: apply final receipts; see the module docstring (and
    ``record_final`` for ``hold_hooks_s``)."""
    matches = await _match(cur, batch)
    if any(not matches.get(i, ("", False))[1] for i in range(len(batch))):
        matches = await _match_locked(cur, batch, matches)
    fresh = _fresh_parts(batch, matches)
    touched = await _update_parts(cur, fresh) if fresh else []
    finals = await _outcomes(cur, touched) if touched else []
    events = await record_final(cur, finals, hold_hooks_s) if finals else []
    # A part that already has its outcome may be an earlier message whose id the provider
    # reused: keep the receipt as early too, for the newer part it may be about.
    unmatched = [r for i, r in enumerate(batch) if not matches.get(i, ("", False))[1]]
    if unmatched:
        await _keep_early(cur, unmatched)
    return ReceiptOutcome(events, len(matches), len(unmatched))


async def _match_locked(
    cur: Any, batch: Sequence[ReceiptIn], matches: dict[int, tuple[str, bool]]
) -> dict[int, tuple[str, bool]]:
    """Match again, under the providers' lock, the receipts that found no open part.

    Only these may become early receipts, so only they must not race a transaction that
    is recording their parts (``record_submitted`` takes the same lock before it looks
    for early receipts). Receipts that matched go without the lock: the common case
    never waits."""
    missing = [i for i in range(len(batch)) if not matches.get(i, ("", False))[1]]
    await lock_providers(cur, [batch[i].provider for i in missing])
    again = await _match(cur, [batch[i] for i in missing])
    return matches | {missing[j]: found for j, found in again.items()}


async def _match(cur: Any, batch: Sequence[ReceiptIn]) -> dict[int, tuple[str, bool]]:
    rows = [(i, o, r.provider, k) for i, r in enumerate(batch) for o, k in enumerate(r.keys)]
    columns = (
        int_array([i for i, _, _, _ in rows]),
        int_array([o for _, o, _, _ in rows]),
        text_array([p for _, _, p, _ in rows]),
        text_array([k for _, _, _, k in rows]),
    )
    await cur.execute(MATCH_SQL, columns)
    return {idx: (key, open_) for idx, key, open_ in await cur.fetchall()}


def _fresh_parts(
    batch: Sequence[ReceiptIn], matches: dict[int, tuple[str, bool]]
) -> list[tuple[str, str, int, str | None, datetime | None]]:
    """One update per part still open, the first receipt in the batch winning."""
    fresh: dict[tuple[str, str], tuple[str, str, int, str | None, datetime | None]] = {}
    for idx, (key, is_open) in matches.items():
        r = batch[idx]
        if is_open:
            fresh.setdefault(
                (r.provider, key), (r.provider, key, int(r.state), r.error_code, r.done_at)
            )
    return list(fresh.values())


async def _update_parts(
    cur: Any, fresh: list[tuple[str, str, int, str | None, datetime | None]]
) -> list[int]:
    columns = (
        text_array([f[0] for f in fresh]),
        text_array([f[1] for f in fresh]),
        int_array([f[2] for f in fresh]),
        text_array([f[3] for f in fresh]),
        timestamptz_array([f[4] for f in fresh]),
    )
    await cur.execute(UPDATE_PARTS_SQL, columns)
    return sorted({row[0] for row in await cur.fetchall()})


async def _outcomes(cur: Any, message_ids: list[int]) -> list[FinalUpdate]:
    """Lock the messages first, then count their parts in a new statement: two
    transactions closing different parts of one message (receipts that came through
    two processes) would otherwise each miss the other's part and neither close it."""
    ids = int_array(message_ids)
    await cur.execute(LOCK_MESSAGES_SQL, (ids,))
    await cur.execute(OUTCOME_SQL, (ids,))
    updates = []
    for mid, parts, delivered, failure, error, _provider_done_at in await cur.fetchall():
        state = message_outcome(parts, delivered, State(failure) if failure else None)
        if state is not None:  # done_at is when we learnt it; the provider's is on the part
            updates.append(FinalUpdate(mid, state, error))
    return updates


async def _keep_early(cur: Any, unmatched: Sequence[ReceiptIn]) -> None:
    await cur.execute(
        EARLY_SQL,
        (
            text_array([r.provider for r in unmatched]),
            text_array([r.keys[0] if r.keys else r.provider_message_id for r in unmatched]),
            text_array([r.provider_message_id for r in unmatched]),
            int_array([int(r.state) for r in unmatched]),
            text_array([r.error_code for r in unmatched]),
            timestamptz_array([r.done_at for r in unmatched]),
        ),
    )
