"""The analytics pages' data: counts from the database, charts drawn from them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiopg

from admin.adapters import analytics_store as store
from admin.core import charts
from admin.core.analytics import Counts, VariantTest, ab_tests, bucket_unit, fill_timeline, funnel

TIMELINE_KINDS = ("sent", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class Overview:
    campaigns: list[store.CampaignRow]
    cost_chart: str


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign: dict[str, Any]
    counts: Counts
    variants: dict[str | None, Counts]
    tests: list[VariantTest]
    segment: str
    segments: dict[str | None, Counts]
    funnel_chart: str
    timeline_chart: str
    cost_chart: str


async def overview(pool: aiopg.Pool) -> Overview:
    campaigns = await store.overview(pool)
    costs = await store.cost_by_provider(pool, None)
    chart = charts.bar_chart("Cost by provider, all campaigns", [(p, c) for p, c, _ in costs], "")
    return Overview(campaigns, chart)


async def campaign_report(
    pool: aiopg.Pool, campaign_id: int, segment: str
) -> CampaignReport | None:
    """The report of one campaign, segmented by ``segment`` (a key of store.SEGMENTS)."""
    row = await store.campaign(pool, campaign_id)
    if row is None:
        return None
    # Independent aggregates over the same rows: run side by side on the pool's connections.
    async with asyncio.TaskGroup() as tasks:
        counts = tasks.create_task(store.campaign_counts(pool, campaign_id))
        variants = tasks.create_task(store.by_variant(pool, campaign_id))
        segments = tasks.create_task(store.by_segment(pool, campaign_id, segment))
        costs = tasks.create_task(store.cost_by_provider(pool, campaign_id))
        timeline = tasks.create_task(_timeline_chart(pool, campaign_id))
    by_variant = variants.result()
    return CampaignReport(
        campaign=dict(zip(("id", "name", "state", "started_at", "finished_at"), row, strict=True)),
        counts=counts.result(),
        variants=by_variant,
        tests=ab_tests({k: v for k, v in by_variant.items() if k is not None}),
        segment=segment,
        segments=segments.result(),
        funnel_chart=charts.funnel_chart("Funnel", funnel(counts.result())),
        timeline_chart=timeline.result(),
        cost_chart=charts.bar_chart("Cost by provider", [(p, c) for p, c, _ in costs.result()], ""),
    )


async def _timeline_chart(pool: aiopg.Pool, campaign_id: int) -> str:
    start, end = await store.time_span(pool, campaign_id)
    unit = bucket_unit(start, end) if start and end else "minute"
    rows = await store.timeline(pool, campaign_id, unit)
    filled = fill_timeline(rows, TIMELINE_KINDS, unit)
    series = [charts.Series(kind, tuple(points)) for kind, points in filled.items()]
    return charts.line_chart("Delivery over time", series, f"messages per {unit}")
