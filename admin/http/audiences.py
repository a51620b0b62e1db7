"""Audiences: the list, the builder page with a live count and sample, and their JSON API.

The preview (``POST /api/audiences/preview``) is called by the builder as the user edits;
its sample always masks phones: it is there to see who is selected, not to read numbers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from admin.adapters import audience_store
from admin.adapters.contact_store import ContactRow, json_safe
from admin.core.audience import AudienceQuery, InvalidQuery, catalog, compile_where, parse_query
from admin.core.audience import query_to_json as to_json
from admin.core.roles import Permission
from admin.http.auth import audit, require
from admin.http.errors import AdminError
from admin.http.keys import ADMIN
from admin.http.render import render
from providers.masking import mask_phone

SAMPLE = 10
PREVIEW_MS = 10_000  # a live count slower than this is refused, not left to pile up
SAMPLE_FIELDS = ("first_name", "last_name", "city", "region", "timezone", "tags")


def today() -> date:
    return datetime.now(UTC).date()  # relative dates count UTC days, as the compiler does


def _query(data: Any) -> AudienceQuery:
    try:
        return parse_query(data)
    except InvalidQuery as exc:
        raise AdminError(exc.message, f"query.{exc.field}") from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # bad or absurdly nested JSON
        raise AdminError("the body must be JSON", "body", 400) from None
    if not isinstance(body, dict):
        raise AdminError("the body must be a JSON object", "body", 400)
    return body


def _name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise AdminError("a name of 1 to 200 characters", "name")
    return name.strip()


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or int(raw) >= 2**63:
        raise AdminError("no such audience", "id", 404, "not_found")
    return int(raw)


def _sample_row(row: ContactRow) -> dict[str, Any]:
    return {"id": row.id, "phone": mask_phone(row.phone),
            **{k: json_safe(row.fields[k]) for k in SAMPLE_FIELDS}}  # fmt: skip


# ---- pages -----------------------------------------------------------------------------------


async def list_page(request: web.Request) -> web.Response:
    await require(request, Permission.audiences)
    audiences = await audience_store.list_audiences(request.app[ADMIN].pool)
    return render(request, "audiences.html", audiences=audiences)


async def edit_page(request: web.Request) -> web.Response:
    await require(request, Permission.audiences)
    found = None
    if request.match_info.get("id") != "new":
        found = await audience_store.get_audience(request.app[ADMIN].pool, _id(request))
        if found is None:
            raise AdminError("no such audience", "id", 404, "not_found")
    query = to_json(found.query) if found else {"match": "all", "rules": []}
    return render(request, "audience_edit.html", audience=found, query=query, catalog=catalog())


# ---- JSON API --------------------------------------------------------------------------------


async def preview(request: web.Request) -> web.Response:
    await require(request, Permission.audiences)
    where = compile_where(_query((await _body(request)).get("query")), today())
    pool = request.app[ADMIN].pool
    try:
        count = await audience_store.count_contacts(pool, where, PREVIEW_MS)
    except audience_store.TooSlow:
        raise AdminError("counting took too long: narrow the query", "query", 422, "slow") from None
    sample = await audience_store.sample_contacts(pool, where, SAMPLE, count) if count else []
    return web.json_response({"count": count, "sample": [_sample_row(r) for r in sample]})


async def create(request: web.Request) -> web.Response:
    user = await require(request, Permission.audiences)
    body = await _body(request)
    name, query = _name(body), _query(body.get("query"))
    try:
        made = await audience_store.create_audience(request.app[ADMIN].pool, name, query, user.id)
    except audience_store.DuplicateName:
        raise AdminError("an audience of this name exists", "name", 409, "conflict") from None
    await audit(request, "audience.create", f"audience:{made}", {"name": name})
    return web.json_response({"id": made}, status=201)


async def update(request: web.Request) -> web.Response:
    await require(request, Permission.audiences)
    audience_id, body = _id(request), await _body(request)
    name, query = _name(body), _query(body.get("query"))
    try:
        found = await audience_store.update_audience(
            request.app[ADMIN].pool, audience_id, name, query
        )
    except audience_store.DuplicateName:
        raise AdminError("an audience of this name exists", "name", 409, "conflict") from None
    if not found:
        raise AdminError("no such audience", "id", 404, "not_found")
    await audit(request, "audience.update", f"audience:{audience_id}", {"name": name})
    return web.json_response({"id": audience_id})


async def delete(request: web.Request) -> web.Response:
    await require(request, Permission.audiences)
    audience_id = _id(request)
    if not await audience_store.delete_audience(request.app[ADMIN].pool, audience_id):
        raise AdminError("no such audience", "id", 404, "not_found")
    await audit(request, "audience.delete", f"audience:{audience_id}")
    return web.json_response({"deleted": audience_id})


async def list_api(request: web.Request) -> web.Response:
    await require(request, Permission.audiences)
    audiences = await audience_store.list_audiences(request.app[ADMIN].pool)
    return web.json_response(
        {"audiences": [{"id": a.id, "name": a.name, "query": to_json(a.query)} for a in audiences]}
    )


async def catalog_api(request: web.Request) -> web.Response:
    await require(request, Permission.audiences)
    return web.json_response({"fields": catalog()})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/audiences", list_page),
        web.get("/audiences/{id}", edit_page),
        web.get("/api/audiences", list_api),
        web.get("/api/audiences/catalog", catalog_api),
        web.post("/api/audiences/preview", preview),
        web.post("/api/audiences", create),
        web.put("/api/audiences/{id}", update),
        web.delete("/api/audiences/{id}", delete),
    ]
