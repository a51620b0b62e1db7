"""The SQL of analytics: what campaigns did, counted in the database.

One query shape (``counts``) serves the overview (grouped by campaign), a campaign's A/B
view (by variant) and its segment breakdown (by a contact attribute): the campaign's
messages with their group, then delivery, cost and time to deliver over them, and the
clicks, replies and conversions joined on the message each was attributed to (a click
through its link's ``message_id``, which the runner sets once the gateway named it).
Segments come from a fixed table of SQL expressions (``SEGMENTS``): a request names a
key, never a column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiopg

from admin.core.analytics import Counts
from gateway.adapters.pg import fetch
from gateway.core.lifecycle import FINAL_STATES, State


def _labels(states: Iterable[State]) -> str:
    return "(" + ", ".join(sorted(f"'{s.label}'" for s in states)) + ")"


# Reported as failed: what never reached the handset for a reason the provider gave
# (expired, no receipt in time, is counted apart).
FAILED = _labels((State.UNDELIVERABLE, State.REJECTED, State.FAILED))
FINAL = _labels(FINAL_STATES)

AGE = "date_part('year', age(current_date, c.birth_date))"
SEGMENTS: Mapping[str, tuple[str, str]] = {
    # key: (label, SQL over cm = admin.campaign_messages, c = admin.contacts)
    "variant": ("A/B variant", "cm.variant::text"),
    "region": ("Region", "c.region"),
    "timezone": ("Time zone", "c.timezone"),
    "gender": ("Gender", "c.gender"),
    "age_band": (
        "Age",
        f"CASE WHEN c.birth_date IS NULL THEN NULL WHEN {AGE} < 18 THEN 'under 18' "
        f"WHEN {AGE} < 25 THEN '18-24' WHEN {AGE} < 35 THEN '25-34' "
        f"WHEN {AGE} < 45 THEN '35-44' WHEN {AGE} < 55 THEN '45-54' "
        f"WHEN {AGE} < 65 THEN '55-64' ELSE '65+' END",
    ),
    "loyalty": ("Loyalty level", "c.loyalty_level"),
    "source_site": ("Source site", "c.source_site"),
    "operator": ("Operator", "c.operator"),
    "provider": ("Provider", "cm.provider"),
}
BY_CAMPAIGN = "cm.campaign_id::text"


async def fetch_named(
    pool: aiopg.Pool, sql: str, params: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """``fetch`` with ``%(name)s`` parameters (a query that uses one value in many places)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall())


PERCENTILES = (
    "percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP ("
    "ORDER BY extract(epoch FROM cm.delivered_at - cm.accepted_at))"
)


def counts_sql(group: str, percentiles: bool = True) -> str:
    # The responses are reached from their own (small) tables by the campaign's index and
    # joined to their message by id, rather than scanning the campaign's messages again.
    # Percentiles sort each group: asked for where they are shown (a campaign's total).
    ttd = PERCENTILES if percentiles else "NULL::float8[]"
    return f"""
WITH base AS (
  SELECT {group} AS g, count(*) AS sent,
         count(*) FILTER (WHERE cm.status = 'delivered') AS delivered,
         count(*) FILTER (WHERE cm.status IN {FAILED}) AS failed,
         count(*) FILTER (WHERE cm.status = 'expired') AS expired,
         count(*) FILTER (WHERE cm.status NOT IN {FINAL}) AS pending,
         COALESCE(sum(cm.price), 0) AS cost,
         {ttd} AS ttd
  FROM admin.campaign_messages cm LEFT JOIN admin.contacts c ON c.id = cm.contact_id
  WHERE {_campaign("cm")}
  GROUP BY 1
), clicks AS (
  SELECT {group} AS g, count(DISTINCT cm.message_id) AS uniq, count(*) AS total
  FROM admin.links l JOIN admin.clicks k ON k.code = l.code
       JOIN admin.campaign_messages cm ON cm.message_id = l.message_id
       LEFT JOIN admin.contacts c ON c.id = cm.contact_id
  WHERE {_campaign("l")}
  GROUP BY 1
), replies AS (
  SELECT {group} AS g, count(*) AS n, count(*) FILTER (WHERE r.opt_out) AS opt_outs
  FROM admin.replies r JOIN admin.campaign_messages cm ON cm.message_id = r.message_id
       LEFT JOIN admin.contacts c ON c.id = cm.contact_id
  WHERE {_campaign("r")}
  GROUP BY 1
), conversions AS (
  SELECT {group} AS g, count(*) AS n, COALESCE(sum(v.value), 0) AS value
  FROM admin.conversions v JOIN admin.campaign_messages cm ON cm.message_id = v.message_id
       LEFT JOIN admin.contacts c ON c.id = cm.contact_id
  WHERE {_campaign("v")}
  GROUP BY 1
)
SELECT b.g, b.sent, b.delivered, b.failed, b.expired, b.pending, b.cost,
       COALESCE(r.opt_outs, 0), COALESCE(k.uniq, 0), COALESCE(k.total, 0), COALESCE(r.n, 0),
       COALESCE(v.n, 0), COALESCE(v.value, 0), b.ttd[1], b.ttd[2]
FROM base b LEFT JOIN clicks k ON k.g IS NOT DISTINCT FROM b.g
     LEFT JOIN replies r ON r.g IS NOT DISTINCT FROM b.g
     LEFT JOIN conversions v ON v.g IS NOT DISTINCT FROM b.g
ORDER BY b.g NULLS LAST
"""


def _campaign(alias: str) -> str:
    """This campaign's rows (all campaigns' when the parameter is NULL)."""
    return f"(%(campaign)s::bigint IS NULL OR {alias}.campaign_id = %(campaign)s::bigint)"


COLUMNS = (
    "sent", "delivered", "failed", "expired", "pending", "cost", "opt_outs", "clicks_unique",
    "clicks_total", "replies", "conversions", "conversion_value", "p50_s", "p95_s",
)  # fmt: skip


def _counts(row: tuple[Any, ...]) -> Counts:
    return Counts(**dict(zip(COLUMNS, row[1:], strict=True)))


async def counts(
    pool: aiopg.Pool, campaign_id: int | None, group: str, percentiles: bool = False
) -> dict[str | None, Counts]:
    """Counts per group (a SQL expression from this module, never from a request); time
    to deliver only with ``percentiles``."""
    rows = await fetch_named(pool, counts_sql(group, percentiles), {"campaign": campaign_id})
    return {r[0]: _counts(r) for r in rows}


async def campaign_counts(pool: aiopg.Pool, campaign_id: int) -> Counts:
    found = await counts(pool, campaign_id, "'all'", percentiles=True)
    return found.get("all", Counts())


async def by_variant(pool: aiopg.Pool, campaign_id: int) -> dict[str | None, Counts]:
    return await counts(pool, campaign_id, SEGMENTS["variant"][1])


async def by_segment(
    pool: aiopg.Pool, campaign_id: int | None, segment: str
) -> dict[str | None, Counts]:
    """Counts per value of a contact attribute; ``segment`` must be a key of SEGMENTS."""
    return await counts(pool, campaign_id, SEGMENTS[segment][1])


@dataclass(frozen=True, slots=True)
class CampaignRow:
    id: int
    name: str
    state: str
    started_at: datetime | None
    counts: Counts


async def overview(pool: aiopg.Pool, limit: int = 200) -> list[CampaignRow]:
    """The most recent campaigns with what each did."""
    rows = await fetch(
        pool,
        "SELECT id, name, state, started_at FROM admin.campaigns ORDER BY id DESC LIMIT %s",
        (limit,),
    )
    per = await counts(pool, None, BY_CAMPAIGN)
    return [CampaignRow(r[0], r[1], r[2], r[3], per.get(str(r[0]), Counts())) for r in rows]


async def campaign(pool: aiopg.Pool, campaign_id: int) -> tuple[Any, ...] | None:
    rows = await fetch(
        pool,
        "SELECT id, name, state, started_at, finished_at FROM admin.campaigns WHERE id = %s",
        (campaign_id,),
    )
    return rows[0] if rows else None


TIMELINE_SQL = f"""
SELECT date_trunc(%(unit)s, t, 'UTC'), kind, count(*) FROM (
  SELECT accepted_at AS t, 'sent' AS kind FROM admin.campaign_messages
  WHERE campaign_id = %(campaign)s
  UNION ALL
  SELECT delivered_at, 'delivered' FROM admin.campaign_messages
  WHERE campaign_id = %(campaign)s AND delivered_at IS NOT NULL
  UNION ALL
  SELECT final_at, 'failed' FROM admin.campaign_messages
  WHERE campaign_id = %(campaign)s AND status IN {FAILED} AND final_at IS NOT NULL
) AS x GROUP BY 1, 2 ORDER BY 1
"""


async def timeline(
    pool: aiopg.Pool, campaign_id: int, unit: str
) -> list[tuple[datetime, str, int]]:
    """Messages sent, delivered and failed per ``unit`` (minute, hour or day)."""
    if unit not in ("minute", "hour", "day"):
        raise ValueError(unit)
    rows = await fetch_named(pool, TIMELINE_SQL, {"unit": unit, "campaign": campaign_id})
    return [(r[0], r[1], r[2]) for r in rows]


async def time_span(pool: aiopg.Pool, campaign_id: int) -> tuple[datetime | None, datetime | None]:
    rows = await fetch(
        pool,
        "SELECT min(accepted_at), max(GREATEST(accepted_at, final_at)) "
        "FROM admin.campaign_messages WHERE campaign_id = %s",
        (campaign_id,),
    )
    return rows[0][0], rows[0][1]


COST_SQL = """
SELECT COALESCE(provider, '(not sent)'), COALESCE(sum(price), 0), count(*)
FROM admin.campaign_messages
WHERE %(campaign)s::bigint IS NULL OR campaign_id = %(campaign)s::bigint
GROUP BY 1 ORDER BY 2 DESC, 1
"""


async def cost_by_provider(
    pool: aiopg.Pool, campaign_id: int | None
) -> list[tuple[str, Decimal, int]]:
    rows = await fetch_named(pool, COST_SQL, {"campaign": campaign_id})
    return [(r[0], r[1], r[2]) for r in rows]
