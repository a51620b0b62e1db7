"""Campaigns in ``admin.campaigns``: edits, state changes, the runner's lease, cursors and
the record of what was sent (``admin.campaign_messages``, ``admin.contact_sends``).

State changes go through one UPDATE guarded by the state table: ``WHERE state = ANY(the
states the action may leave from)``, so two clicks, or a click racing the runner, cannot
take a campaign through an illegal transition. The runner holds a campaign by a lease
(``lease_owner``, ``lease_until``) taken under ``FOR UPDATE SKIP LOCKED`` and renewed by
every chunk it records; a runner that dies leaves a lease that runs out, and another
process takes the campaign over from its cursors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiopg

from admin.core import campaigns as core
from admin.core.campaigns import Action, FrequencyCap, Spec, State, Window
from gateway.adapters.pg import fetch

_COLUMNS = (
    "id, name, state, audience_id, sender, variants, schedule, window_start, window_end, "
    "rate_per_s, cap_messages, cap_period, next_run_at, run_id, cursors, zones_done, total, "
    "sent, rejected, created_at, started_at, finished_at, lease_owner"
)
_RECORD = """
WITH ins AS (
    INSERT INTO admin.campaign_messages
        (message_id, campaign_id, run_id, contact_id, variant, parts)
    SELECT m, %(id)s, %(run)s, c, v, p
    FROM unnest(%(messages)s::bigint[], %(contacts)s::bigint[], %(variants)s::text[],
                %(parts)s::int[]) AS u(m, c, v, p)
    ON CONFLICT DO NOTHING
    RETURNING contact_id
), sends AS (
    INSERT INTO admin.contact_sends (contact_id, campaign_id) SELECT contact_id, %(id)s FROM ins
)
UPDATE admin.campaigns SET
    cursors = jsonb_set(cursors, ARRAY[%(zone)s], to_jsonb(%(last)s::bigint)),
    zones_done = CASE WHEN %(done)s THEN array_append(zones_done, %(zone)s) ELSE zones_done END,
    sent = sent + (SELECT count(*) FROM ins),
    rejected = rejected + %(rejected)s,
    lease_until = now() + %(lease)s * interval '1 second',
    updated_at = now()
WHERE id = %(id)s AND run_id = %(run)s AND lease_owner = %(owner)s
RETURNING state
"""
_CLAIM = f"""
WITH due AS (
    SELECT id FROM admin.campaigns
    WHERE (state = 'running' OR (state = 'scheduled' AND next_run_at <= now()))
      AND (lease_until IS NULL OR lease_until < now())
      AND NOT (id = ANY(%(busy)s))
    ORDER BY next_run_at NULLS FIRST, id
    LIMIT 1 FOR UPDATE SKIP LOCKED
)
UPDATE admin.campaigns c
SET lease_owner = %(owner)s, lease_until = now() + %(lease)s * interval '1 second'
FROM due WHERE c.id = due.id
RETURNING {", ".join("c." + col for col in _COLUMNS.split(", "))}
"""


@dataclass(frozen=True, slots=True)
class CampaignRow:
    id: int
    spec: Spec
    state: State
    next_run_at: datetime | None
    run_id: int
    cursors: Mapping[str, int]  # zone ("" for none) -> last contact id sent in this run
    zones_done: frozenset[str]
    total: int
    sent: int
    rejected: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None


@dataclass(frozen=True, slots=True)
class Lease:
    """A runner's hold on one run of one campaign."""

    campaign_id: int
    run_id: int
    owner: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one chunk sent, recorded with its cursor advance in one statement."""

    zone: str
    last_id: int
    done: bool  # the zone has no contact left in this run
    messages: Sequence[tuple[int, int, str, int]]  # (message id, contact id, variant, parts)
    rejected: int = 0


class IllegalChange(Exception):
    def __init__(self, state: State | None, action: Action) -> None:
        what = f"a {state.value} campaign" if state else "no such campaign"
        super().__init__(f"{what} cannot {action.value}")
        self.state = state
        self.action = action


async def _fetch_named(
    pool: aiopg.Pool, sql: str, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall())


# --- edits and reads --------------------------------------------------------------------


def _values(spec: Spec) -> tuple[Any, ...]:
    window = None if spec.window == core.ALWAYS else spec.window
    variants = [
        {"variant": v.name, "template_id": v.template_id, "percent": str(v.percent)}
        for v in spec.variants
    ]
    return (
        spec.name, spec.audience_id, spec.sender, json.dumps(variants),
        json.dumps(core.schedule_json(spec.schedule)), window and window.start,
        window and window.end, spec.rate_per_s, spec.cap and spec.cap.messages,
        spec.cap and spec.cap.period,
    )  # fmt: skip


async def create(pool: aiopg.Pool, spec: Spec, user_id: int | None) -> int:
    sql = (
        "INSERT INTO admin.campaigns (name, audience_id, sender, variants, schedule, "
        "window_start, window_end, rate_per_s, cap_messages, cap_period, created_by) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
    )
    return int((await fetch(pool, sql, (*_values(spec), user_id)))[0][0])


async def update(pool: aiopg.Pool, campaign_id: int, spec: Spec) -> State | None:
    """Edit a draft; returns the state found (None: no such campaign)."""
    sql = (
        "UPDATE admin.campaigns SET name = %s, audience_id = %s, sender = %s, variants = %s, "
        "schedule = %s, window_start = %s, window_end = %s, rate_per_s = %s, "
        "cap_messages = %s, cap_period = %s, updated_at = now() "
        "WHERE id = %s AND state = ANY(%s) RETURNING state"
    )
    editable = [s.value for s in core.EDITABLE]
    rows = await fetch(pool, sql, (*_values(spec), campaign_id, editable))
    if rows:
        return State(rows[0][0])
    found = await get(pool, campaign_id)
    return found.state if found else None


async def get(pool: aiopg.Pool, campaign_id: int) -> CampaignRow | None:
    rows = await fetch(
        pool, f"SELECT {_COLUMNS} FROM admin.campaigns WHERE id = %s", (campaign_id,)
    )
    return _row(rows[0]) if rows else None


async def list_campaigns(pool: aiopg.Pool, limit: int = 200) -> list[CampaignRow]:
    rows = await fetch(
        pool, f"SELECT {_COLUMNS} FROM admin.campaigns ORDER BY id DESC LIMIT %s", (limit,)
    )
    return [_row(row) for row in rows]


def _row(row: Sequence[Any]) -> CampaignRow:
    (id_, name, state, audience, sender, variants, schedule, w_start, w_end, rate, cap_n,
     cap_period, next_run, run, cursors, done, total, sent, rejected, created, started,
     finished, owner) = row  # fmt: skip
    spec = Spec(
        name=name,
        audience_id=audience,
        sender=sender,
        variants=tuple(
            core.Variant(v["variant"], int(v["template_id"]), Decimal(v["percent"]))
            for v in variants
        ),
        schedule=core.parse_schedule(schedule),
        window=Window(w_start, w_end) if w_start is not None else core.ALWAYS,
        rate_per_s=rate,
        cap=FrequencyCap(cap_n, cap_period) if cap_n else None,
    )
    return CampaignRow(
        id_, spec, State(state), next_run, run, dict(cursors), frozenset(done), total, sent,
        rejected, created, started, finished, owner,
    )  # fmt: skip


# --- state changes ----------------------------------------------------------------------


async def change(
    pool: aiopg.Pool, campaign_id: int, action: Action, next_run_at: datetime | None = None
) -> State:
    """Apply a marketer's ``action``; raises ``IllegalChange`` if the state forbids it."""
    sources = core.sources(action)
    target = core.transition(sources[0], action)  # every source leads to the same state
    sql = (
        "UPDATE admin.campaigns SET state = %s, updated_at = now(), "
        "next_run_at = COALESCE(%s, next_run_at) "
        "WHERE id = %s AND state = ANY(%s) RETURNING state"
    )
    rows = await fetch(
        pool, sql, (target.value, next_run_at, campaign_id, [s.value for s in sources])
    )
    if rows:
        return State(rows[0][0])
    found = await get(pool, campaign_id)
    raise IllegalChange(found.state if found else None, action)


async def claim(
    pool: aiopg.Pool, owner: str, lease_s: float, busy: Sequence[int] = ()
) -> CampaignRow | None:
    """A due or running campaign no live runner holds, now leased to ``owner``."""
    params = {"owner": owner, "lease": lease_s, "busy": list(busy)}
    rows = await _fetch_named(pool, _CLAIM, params)
    return _row(rows[0]) if rows else None


async def begin_run(pool: aiopg.Pool, campaign_id: int, owner: str, total: int) -> int | None:
    """scheduled → running with a fresh run (cursors, counts); returns the run id."""
    sql = (
        "WITH c AS (UPDATE admin.campaigns SET state = 'running', run_id = run_id + 1, "
        "cursors = '{}', zones_done = '{}', total = %s, sent = 0, rejected = 0, "
        "started_at = now(), finished_at = NULL, updated_at = now() "
        "WHERE id = %s AND state = 'scheduled' AND lease_owner = %s RETURNING id, run_id) "
        "INSERT INTO admin.campaign_runs (campaign_id, run_id, total) "
        "SELECT id, run_id, %s FROM c RETURNING run_id"
    )
    rows = await fetch(pool, sql, (total, campaign_id, owner, total))
    return int(rows[0][0]) if rows else None


async def record(pool: aiopg.Pool, lease: Lease, chunk: Chunk) -> State | None:
    """Record a chunk's accepted messages, their sends and the zone's cursor advance, in one
    statement; renews the lease. Returns the campaign's state, or None if the lease was
    lost (the messages are recorded all the same: they were sent)."""
    rows = await _fetch_named(pool, _RECORD, _record_params(lease, chunk))
    return State(rows[0][0]) if rows else None


def _record_params(lease: Lease, chunk: Chunk) -> dict[str, Any]:
    columns = list(zip(*chunk.messages, strict=True)) or [(), (), (), ()]
    return {
        "id": lease.campaign_id,
        "run": lease.run_id,
        "owner": lease.owner,
        "lease": lease.seconds,
        "zone": chunk.zone,
        "last": chunk.last_id,
        "done": chunk.done,
        "rejected": chunk.rejected,
        "messages": list(columns[0]),
        "contacts": list(columns[1]),
        "variants": list(columns[2]),
        "parts": list(columns[3]),
    }


async def renew(pool: aiopg.Pool, lease: Lease) -> State | None:
    """Keep the lease (while waiting for a window); the state, None if the lease is lost."""
    sql = (
        "UPDATE admin.campaigns SET lease_until = now() + %s * interval '1 second' "
        "WHERE id = %s AND lease_owner = %s RETURNING state"
    )
    rows = await fetch(pool, sql, (lease.seconds, lease.campaign_id, lease.owner))
    return State(rows[0][0]) if rows else None


async def release(pool: aiopg.Pool, campaign_id: int, owner: str) -> None:
    sql = (
        "UPDATE admin.campaigns SET lease_owner = NULL, lease_until = NULL "
        "WHERE id = %s AND lease_owner = %s"
    )
    await fetch(pool, sql, (campaign_id, owner))


async def end_run(pool: aiopg.Pool, lease: Lease, next_run_at: datetime | None) -> State | None:
    """running → finished, or back to scheduled for a recurring campaign's next run."""
    action = Action.REARM if next_run_at else Action.FINISH
    sql = (
        "WITH c AS (UPDATE admin.campaigns SET state = %s, next_run_at = %s, finished_at = now(), "
        "lease_owner = NULL, lease_until = NULL, updated_at = now() "
        "WHERE id = %s AND run_id = %s AND lease_owner = %s AND state = 'running' "
        "RETURNING id, run_id, sent, rejected, state) "
        "UPDATE admin.campaign_runs r SET finished_at = now(), sent = c.sent, "
        "rejected = c.rejected FROM c WHERE r.campaign_id = c.id AND r.run_id = c.run_id "
        "RETURNING c.state"
    )
    target = core.transition(State.RUNNING, action)
    params = (target.value, next_run_at, lease.campaign_id, lease.run_id, lease.owner)
    rows = await fetch(pool, sql, params)
    return State(rows[0][0]) if rows else None


# --- the audience, as the runner sees it ------------------------------------------------


def eligible(audience_sql: str, params: tuple[Any, ...], cap: FrequencyCap | None,
             now: datetime) -> tuple[str, tuple[Any, ...]]:  # fmt: skip
    """The audience's WHERE (over alias ``c``) narrowed to who may get marketing now:
    subscribed, with consent, and under the frequency cap."""
    sql = f"({audience_sql}) AND c.subscribed IS TRUE AND c.consent IS TRUE"
    if cap is None:
        return sql, params
    sql += (
        " AND (SELECT count(*) FROM admin.contact_sends s "
        "WHERE s.contact_id = c.id AND s.sent_at > %s) < %s"
    )
    return sql, (*params, cap.since(now), cap.messages)


def in_zone(where: tuple[str, tuple[Any, ...]], zone: str) -> tuple[str, tuple[Any, ...]]:
    sql, params = where
    return f"{sql} AND c.timezone = %s", (*params, zone)


async def zones(pool: aiopg.Pool, where: tuple[str, tuple[Any, ...]]) -> list[str]:
    """The time zones of the audience ("" for contacts without one)."""
    sql = f"SELECT DISTINCT COALESCE(c.timezone, '') FROM admin.contacts c WHERE {where[0]}"
    return [row[0] for row in await fetch(pool, sql, where[1])]


async def count(pool: aiopg.Pool, where: tuple[str, tuple[Any, ...]]) -> int:
    sql = f"SELECT count(*) FROM admin.contacts c WHERE {where[0]}"
    return int((await fetch(pool, sql, where[1]))[0][0])


async def sample_phones(pool: aiopg.Pool, where: tuple[str, tuple[Any, ...]], n: int) -> list[str]:
    sql = f"SELECT c.phone FROM admin.contacts c WHERE {where[0]} ORDER BY c.id LIMIT %s"
    return [row[0] for row in await fetch(pool, sql, (*where[1], n))]


# --- progress ---------------------------------------------------------------------------


async def progress(pool: aiopg.Pool, campaign_id: int, run_id: int) -> dict[str, int]:
    """Messages of the run by status (the events consumer moves them on)."""
    sql = (
        "SELECT status, count(*) FROM admin.campaign_messages "
        "WHERE campaign_id = %s AND run_id = %s GROUP BY status"
    )
    return {status: int(n) for status, n in await fetch(pool, sql, (campaign_id, run_id))}


async def variant_counts(pool: aiopg.Pool, campaign_id: int) -> dict[str, dict[str, int]]:
    sql = (
        "SELECT variant, status, count(*) FROM admin.campaign_messages "
        "WHERE campaign_id = %s GROUP BY variant, status"
    )
    found: dict[str, dict[str, int]] = {}
    for variant, status, n in await fetch(pool, sql, (campaign_id,)):
        found.setdefault(variant.strip(), {})[status] = int(n)
    return found


def lease_for(row: CampaignRow, owner: str, seconds: float) -> Lease:
    return Lease(row.id, row.run_id, owner, seconds)


async def schedule(pool: aiopg.Pool, campaign_id: int, now: datetime) -> State:
    """draft → scheduled, due at the schedule's first run (now, for a past start time)."""
    found = await get(pool, campaign_id)
    if found is None:
        raise IllegalChange(None, Action.SCHEDULE)
    due = core.first_run(found.spec.schedule, now)
    return await change(pool, campaign_id, Action.SCHEDULE, due)
