"""Exports (analyst and admin): campaign results and a campaign's messages as CSV or
Parquet, streamed in chunks. Phones leave masked unless the user's role may read them and
asks (``?phones=full``). Every export is audited before its first byte, so one cut off
half-way is on record too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from aiohttp import web

from admin.adapters import analytics_store, export_store
from admin.core.roles import Permission, can
from admin.http.auth import audit, require
from admin.http.errors import AdminError
from admin.http.keys import ADMIN
from admin.http.render import render
from admin.services.export import MESSAGES, RESULTS, Format, Row, Shape, write_export

CHUNK = 5000


async def exports_page(request: web.Request) -> web.Response:
    user = await require(request, Permission.export)
    campaigns = await analytics_store.overview(request.app[ADMIN].pool)
    may_unmask = can(user.role, Permission.pii_read)
    return render(request, "exports.html", campaigns=campaigns, may_unmask=may_unmask)


async def export_results(request: web.Request) -> web.StreamResponse:
    await require(request, Permission.export)
    fmt = _format(request)
    await audit(request, "export.campaign_results", "campaigns", {"format": fmt.value})
    chunks = export_store.result_chunks(request.app[ADMIN].pool, CHUNK)
    return await _stream(request, fmt, "campaign-results", chunks, RESULTS, mask=False)


async def export_messages(request: web.Request) -> web.StreamResponse:
    user = await require(request, Permission.export)
    fmt, campaign_id = _format(request), _campaign_id(request)
    full = request.query.get("phones") == "full"
    if full and not can(user.role, Permission.pii_read):
        raise AdminError("your role may not see full phone numbers", "phones", 403, "forbidden")
    pool = request.app[ADMIN].pool
    if not await export_store.campaign_exists(pool, campaign_id):
        raise AdminError("no such campaign", "id", 404, "not_found")
    detail = {"format": fmt.value, "phones": "full" if full else "masked"}
    await audit(request, "export.campaign_messages", f"campaign:{campaign_id}", detail)
    chunks = export_store.message_chunks(pool, campaign_id, CHUNK)
    name = f"campaign-{campaign_id}-messages"
    return await _stream(request, fmt, name, chunks, MESSAGES, mask=not full)


async def _stream(
    request: web.Request,
    fmt: Format,
    name: str,
    chunks: AsyncIterator[Sequence[Row]],
    shape: Shape,
    mask: bool,
) -> web.StreamResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = web.StreamResponse(
        headers={
            "Content-Type": fmt.content_type,
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt.value}"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await write_export(chunks, shape, fmt, mask, response.write)
    await response.write_eof()
    return response


def _format(request: web.Request) -> Format:
    try:
        return Format(request.match_info["format"])
    except ValueError:
        raise AdminError("csv or parquet", "format", 404, "not_found") from None


def _campaign_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise AdminError("no such campaign", "id", 404, "not_found")
    return int(raw)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/exports", exports_page),
        web.get("/api/exports/campaigns.{format}", export_results),
        web.get("/api/exports/campaigns/{id}/messages.{format}", export_messages),
    ]
