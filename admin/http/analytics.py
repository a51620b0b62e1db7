"""The analytics pages (analyst and admin): the overview and a campaign's report, with a
JSON twin of the report; and the conversions API, which is analytics' input."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from admin.adapters.analytics_store import SEGMENTS
from admin.core.analytics import Counts
from admin.core.roles import Permission
from admin.http import conversions
from admin.http.auth import require
from admin.http.errors import AdminError
from admin.http.keys import ADMIN
from admin.http.render import render
from admin.services import reports


async def overview_page(request: web.Request) -> web.Response:
    await require(request, Permission.analytics)
    found = await reports.overview(request.app[ADMIN].pool)
    return render(request, "analytics.html", overview=found, percent=percent)


async def campaign_page(request: web.Request) -> web.Response:
    await require(request, Permission.analytics)
    report = await _report(request)
    return render(
        request, "analytics_campaign.html", report=report, segments=SEGMENTS, percent=percent
    )


async def campaign_json(request: web.Request) -> web.Response:
    await require(request, Permission.analytics)
    report = await _report(request)
    body = {
        "campaign": report.campaign,
        "counts": counts_json(report.counts),
        "variants": {k: counts_json(v) for k, v in report.variants.items()},
        "ab_tests": [asdict(t) for t in report.tests],
        "segment": report.segment,
        "segments": {str(k): counts_json(v) for k, v in report.segments.items()},
    }
    return web.json_response(body, dumps=_dumps)


async def _report(request: web.Request) -> reports.CampaignReport:
    raw = request.match_info["id"]
    segment = request.query.get("segment", "region")
    if segment not in SEGMENTS:
        raise AdminError(f"one of {', '.join(SEGMENTS)}", "segment")
    report = None
    if raw.isascii() and raw.isdigit() and len(raw) < 19:
        report = await reports.campaign_report(request.app[ADMIN].pool, int(raw), segment)
    if report is None:
        raise AdminError("no such campaign", "id", 404, "not_found")
    return report


def counts_json(counts: Counts) -> dict[str, Any]:
    rates = ("delivery_rate", "click_rate", "conversion_rate", "cost_per_conversion")
    return asdict(counts) | {name: getattr(counts, name) for name in rates}


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)  # Decimal money and times as strings


def routes() -> list[web.RouteDef]:
    return [
        web.get("/analytics", overview_page),
        web.get("/analytics/campaigns/{id}", campaign_page),
        web.get("/api/analytics/campaigns/{id}", campaign_json),
        *conversions.routes(),
    ]
