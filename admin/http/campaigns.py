"""Campaigns: the list, the editor (with its dry run), the campaign page with its live
progress, and their JSON API. Marketers edit and start; analysts and operators watch.

API (session cookie, CSRF header on writes)::

    GET  /api/campaigns                       the list
    POST /api/campaigns                       create a draft (body: the spec)
    GET  /api/campaigns/{id}                  spec and state
    PUT  /api/campaigns/{id}                  edit a draft (409 once scheduled)
    POST /api/campaigns/dry-run               counts per variant, parts, cost (body: spec)
    POST /api/campaigns/{id}/{action}         start | unschedule | pause | resume | cancel
    GET  /api/campaigns/{id}/progress         live counts (the page polls it every second)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from admin.adapters import audience_store, campaign_store, template_store
from admin.adapters.campaign_store import CampaignRow, IllegalChange
from admin.core import campaigns as core
from admin.core.campaigns import Action, InvalidCampaign, Spec
from admin.core.roles import Permission, Role, can
from admin.http.auth import audit, require
from admin.http.errors import AdminError
from admin.http.keys import ADMIN
from admin.http.render import render
from admin.services import campaigns as service

MAX_ID = 2**63 - 1
ACTIONS = {
    "start": Action.SCHEDULE,
    "unschedule": Action.UNSCHEDULE,
    "pause": Action.PAUSE,
    "resume": Action.RESUME,
    "cancel": Action.CANCEL,
}
ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
    "Asia/Magadan", "Asia/Kamchatka",
)  # fmt: skip


# --- pages ------------------------------------------------------------------------------


async def list_page(request: web.Request) -> web.Response:
    user = await require(request, Permission.campaigns_read)
    rows = await campaign_store.list_campaigns(request.app[ADMIN].pool)
    return render(request, "campaigns.html", campaigns=rows, can_write=_writer(user.role))


async def edit_page(request: web.Request) -> web.Response:
    await require(request, Permission.campaigns_write)
    row = await _row(request) if "id" in request.match_info else None
    pool = request.app[ADMIN].pool
    return render(
        request,
        "campaign_edit.html",
        campaign=row,
        spec=core.spec_json(row.spec) if row else None,
        audiences=await audience_store.list_audiences(pool),
        templates=await template_store.list_templates(pool),
        zones=ZONES,
    )


async def campaign_page(request: web.Request) -> web.Response:
    user = await require(request, Permission.campaigns_read)
    row = await _row(request)
    return render(
        request, "campaign.html", campaign=row, spec=core.spec_json(row.spec),
        can_write=_writer(user.role),
    )  # fmt: skip


def _writer(role: Role) -> bool:
    return can(role, Permission.campaigns_write)


# --- API --------------------------------------------------------------------------------


async def list_api(request: web.Request) -> web.Response:
    await require(request, Permission.campaigns_read)
    rows = await campaign_store.list_campaigns(request.app[ADMIN].pool)
    return web.json_response({"campaigns": [_row_json(row) for row in rows]})


async def get_api(request: web.Request) -> web.Response:
    await require(request, Permission.campaigns_read)
    return web.json_response(_row_json(await _row(request)))


async def create_api(request: web.Request) -> web.Response:
    user = await require(request, Permission.campaigns_write)
    spec = _spec(await _body(request))
    campaign_id = await campaign_store.create(request.app[ADMIN].pool, spec, user.id)
    await audit(request, "campaign.create", f"campaign:{campaign_id}", {"name": spec.name})
    return web.json_response({"id": campaign_id}, status=201)


async def update_api(request: web.Request) -> web.Response:
    await require(request, Permission.campaigns_write)
    campaign_id = _id(request)
    spec = _spec(await _body(request))
    state = await campaign_store.update(request.app[ADMIN].pool, campaign_id, spec)
    if state is None:
        raise AdminError("no such campaign", "id", 404, "not_found")
    if state not in core.EDITABLE:
        raise AdminError(f"a {state.value} campaign cannot be edited", "state", 409, "conflict")
    await audit(request, "campaign.update", f"campaign:{campaign_id}", {"name": spec.name})
    return web.json_response({"id": campaign_id})


async def dry_run_api(request: web.Request) -> web.Response:
    await require(request, Permission.campaigns_write)
    spec = _spec(await _body(request))
    try:
        found = await service.dry_run(request.app[ADMIN], spec, datetime.now(UTC))
    except service.Missing as exc:
        raise AdminError(str(exc), exc.field, 422, "not_found") from None
    return web.json_response(_dry_run_json(found))


async def action_api(request: web.Request) -> web.Response:
    await require(request, Permission.campaigns_write)
    campaign_id, name = _id(request), request.match_info["action"]
    action = ACTIONS.get(name)
    if action is None:
        raise AdminError(f"one of {', '.join(ACTIONS)}", "action", 404, "not_found")
    state = await _change(request, campaign_id, action)
    await audit(request, f"campaign.{name}", f"campaign:{campaign_id}")
    return web.json_response({"id": campaign_id, "state": state.value})


async def _change(request: web.Request, campaign_id: int, action: Action) -> core.State:
    pool = request.app[ADMIN].pool
    try:
        if action is Action.SCHEDULE:
            return await campaign_store.schedule(pool, campaign_id, datetime.now(UTC))
        return await campaign_store.change(pool, campaign_id, action)
    except IllegalChange as exc:
        status = 404 if exc.state is None else 409
        raise AdminError(str(exc), "state", status, "conflict") from None


async def progress_api(request: web.Request) -> web.Response:
    await require(request, Permission.campaigns_read)
    found = await service.progress(request.app[ADMIN], _id(request))
    if found is None:
        raise AdminError("no such campaign", "id", 404, "not_found")
    return web.json_response(found.to_json())


# --- parsing and shaping ----------------------------------------------------------------


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise AdminError("the body must be JSON", "body", 400, "bad_json") from None


def _spec(data: Any) -> Spec:
    try:
        return core.parse_spec(data)
    except InvalidCampaign as exc:
        raise AdminError(exc.message, exc.field) from None


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if len(raw) > 19 or int(raw) > MAX_ID:
        raise AdminError("no such campaign", "id", 404, "not_found")
    return int(raw)


async def _row(request: web.Request) -> CampaignRow:
    row = await campaign_store.get(request.app[ADMIN].pool, _id(request))
    if row is None:
        raise AdminError("no such campaign", "id", 404, "not_found")
    return row


def _row_json(row: CampaignRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state.value,
        "spec": core.spec_json(row.spec),
        "run_id": row.run_id,
        "total": row.total,
        "sent": row.sent,
        "rejected": row.rejected,
        "next_run_at": _iso(row.next_run_at),
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _dry_run_json(found: service.DryRun) -> dict[str, Any]:
    est, priced = found.estimate, found.unit_price is not None
    return {
        "audience": found.audience,
        "eligible": est.contacts,
        "excluded": found.audience - est.contacts,
        "variants": [
            {
                "variant": v.variant,
                "template_id": v.template_id,
                "contacts": v.contacts,
                "parts_each": v.parts_each,
                "parts": v.parts,
                "cost": str(v.cost) if priced else None,
            }
            for v in est.variants
        ],
        "parts": est.parts,
        "cost": str(est.cost) if priced else None,
        "unit_price": str(found.unit_price) if found.unit_price is not None else None,
        "zones": list(found.zones),
        "open_zones": list(found.open_zones),
    }


def routes() -> list[web.RouteDef]:
    return [
        web.get("/campaigns", list_page),
        web.get("/campaigns/new", edit_page),
        web.get("/campaigns/{id:\\d+}", campaign_page),
        web.get("/campaigns/{id:\\d+}/edit", edit_page),
        web.get("/api/campaigns", list_api),
        web.post("/api/campaigns", create_api),
        web.post("/api/campaigns/dry-run", dry_run_api),
        web.get("/api/campaigns/{id:\\d+}", get_api),
        web.put("/api/campaigns/{id:\\d+}", update_api),
        web.get("/api/campaigns/{id:\\d+}/progress", progress_api),
        web.post("/api/campaigns/{id:\\d+}/{action:[a-z]+}", action_api),
    ]
