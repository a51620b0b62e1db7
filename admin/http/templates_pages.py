"""Templates: the list and editor page, the JSON API, and the live preview.

``POST /api/templates/preview`` answers what the editor shows while the marketer types:
the text as a sample contact gets it (short links and transliteration applied as saved),
its encoding, parts, price per message, the characters that force UCS-2, the same text
with and without transliteration (the parts it saves), and the worst case (every
placeholder at its longest). Prices come from the gateway's route table for a sample
number (a Moscow MTS number unless given): the dearest eligible route, what billing holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, replace
from decimal import Decimal
from typing import Any

from aiohttp import web

from admin.adapters import template_store
from admin.adapters.template_store import TemplateDraft, TemplateRow
from admin.core.links import check_links, sized_like
from admin.core.roles import Permission
from admin.core.templates import (
    InvalidTemplate,
    Preview,
    PreviewRequest,
    check_defaults,
    parse_template,
    preview,
    unit_price,
    worst_case,
)
from admin.core.translit import transliterate
from admin.http.auth import audit, require
from admin.http.errors import AdminError
from admin.http.keys import ADMIN
from admin.http.render import render
from providers.encoding import TooManyParts

MAX_TEXT = 2000
MAX_NAME = 200
SAMPLE_NUMBER = "+79161234567"
MAX_ID = 2**63 - 1
MAX_LENGTH = 500  # of one placeholder's value, in the worst case
_E164 = re.compile(r"\+[1-9]\d{6,14}")
SAMPLE_FIELDS = {"first_name": "Анна", "last_name": "Иванова", "city": "Москва"}


async def templates_page(request: web.Request) -> web.Response:
    await require(request, Permission.templates)
    rows = await template_store.list_templates(request.app[ADMIN].pool)
    chosen = _chosen(request, rows)
    return render(request, "templates.html", templates=rows, chosen=chosen, sample=SAMPLE_FIELDS)


async def list_api(request: web.Request) -> web.Response:
    await require(request, Permission.templates)
    rows = await template_store.list_templates(request.app[ADMIN].pool)
    return web.json_response({"templates": [_row_json(row) for row in rows]})


async def get_api(request: web.Request) -> web.Response:
    await require(request, Permission.templates)
    row = await template_store.get_template(request.app[ADMIN].pool, _id(request))
    if row is None:
        raise AdminError("no such template", "id", 404, "not_found")
    return web.json_response(_row_json(row))


async def create_api(request: web.Request) -> web.Response:
    user = await require(request, Permission.templates)
    draft = draft_of(await _body(request))
    template_id = await _saving(
        template_store.create_template(request.app[ADMIN].pool, draft, user.id)
    )
    await audit(request, "template.create", f"template:{template_id}", {"name": draft.name})
    return web.json_response({"id": template_id}, status=201)


async def update_api(request: web.Request) -> web.Response:
    await require(request, Permission.templates)
    template_id, draft = _id(request), draft_of(await _body(request))
    if not await _saving(
        template_store.update_template(request.app[ADMIN].pool, template_id, draft)
    ):
        raise AdminError("no such template", "id", 404, "not_found")
    await audit(request, "template.update", f"template:{template_id}", {"name": draft.name})
    return web.json_response({"id": template_id})


async def delete_api(request: web.Request) -> web.Response:
    await require(request, Permission.templates)
    template_id = _id(request)
    try:
        deleted = await template_store.delete_template(request.app[ADMIN].pool, template_id)
    except template_store.TemplateInUse as exc:
        message = f"campaigns {exc.campaign_ids} still use this template"
        raise AdminError(message, "id", 409, "conflict") from None
    if not deleted:
        raise AdminError("no such template", "id", 404, "not_found")
    await audit(request, "template.delete", f"template:{template_id}")
    return web.json_response({"deleted": template_id})


async def preview_api(request: web.Request) -> web.Response:
    await require(request, Permission.templates)
    data = await _body(request)
    draft = draft_of({"name": "preview", **data})
    admin = request.app[ADMIN]
    price = unit_price(admin.gateway_settings.routing, _sample_number(data), "bulk")
    options = _preview_request(data, draft, price)
    try:
        found = preview_json(draft, options, admin.settings.public_url)
        found["max_parts"] = admin.gateway_settings.max_parts  # the gateway refuses more
    except TooManyParts as exc:
        raise AdminError(f"too long: {exc}", "text") from None
    return web.json_response(found)


def preview_json(draft: TemplateDraft, request: PreviewRequest, base_url: str) -> dict[str, Any]:
    """Everything the editor shows: as saved, without and with transliteration, worst case.
    Links are shortened in the template text, before rendering, as the campaign runner does."""
    text = sized_like(draft.text, base_url) if draft.track_links else draft.text
    latin = replace(request, rewrite=transliterate)
    chosen = latin if draft.transliterate else request
    shown, as_plain, as_latin = (preview(text, r) for r in (chosen, request, latin))
    return {
        "preview": _preview_json(shown),
        "plain": _preview_json(as_plain),
        "transliterated": _preview_json(as_latin),
        "saved_parts": as_plain.parts - as_latin.parts,
        "worst": _preview_json(worst_case(text, chosen)),
        "unit_price": None if request.unit_price is None else str(request.unit_price),
    }


def draft_of(data: Mapping[str, Any]) -> TemplateDraft:
    """The editor's JSON validated: a 422 naming the field (or the placeholder) otherwise."""
    name = _str(data.get("name"), "name", MAX_NAME).strip()
    if not name:
        raise AdminError("a template needs a name", "name")
    text = _str(data.get("text"), "text", MAX_TEXT)
    defaults = data.get("defaults")
    defaults = {} if defaults is None else defaults
    if not isinstance(defaults, dict):
        raise AdminError("must be an object of placeholder: text", "defaults")
    track_links = _bool(data, "track_links")
    checked = _checked(text, defaults, track_links)
    return TemplateDraft(name, text, checked, _bool(data, "transliterate"), track_links)


def _checked(text: str, defaults: dict[str, Any], track_links: bool) -> dict[str, str]:
    """The defaults, once the text parses, they fit it and its tracked links are safe."""
    try:
        checked = check_defaults(parse_template(text), defaults)
        if track_links:
            check_links(text, checked)
    except InvalidTemplate as exc:
        field = "defaults" if exc.placeholder in defaults else "text"
        raise AdminError(exc.message, field) from None
    return checked


def _sample_number(data: Mapping[str, Any]) -> str:
    number = _str(data.get("sample_number", SAMPLE_NUMBER), "sample_number", 16)
    if not _E164.fullmatch(number):
        raise AdminError("must be an E.164 number like +79161234567", "sample_number")
    return number


def routes() -> list[web.RouteDef]:
    return [
        web.get("/templates", templates_page),
        web.get("/api/templates", list_api),
        web.post("/api/templates", create_api),
        web.post("/api/templates/preview", preview_api),
        web.get("/api/templates/{id:\\d+}", get_api),
        web.put("/api/templates/{id:\\d+}", update_api),
        web.delete("/api/templates/{id:\\d+}", delete_api),
    ]


def _preview_request(
    data: Mapping[str, Any], draft: TemplateDraft, price: Decimal | None
) -> PreviewRequest:
    fields = data.get("sample", SAMPLE_FIELDS)
    if not isinstance(fields, dict):
        raise AdminError("must be an object of field: value", "sample")
    lengths = data.get("max_lengths")
    lengths = {} if lengths is None else lengths
    if not isinstance(lengths, dict) or not all(map(_is_length, lengths.values())):
        raise AdminError("must be an object of placeholder: length (0-500)", "max_lengths")
    if "max_length" in data:
        if not _is_length(data["max_length"]):
            raise AdminError("must be a length (0-500)", "max_length")
        names = parse_template(draft.text).placeholders
        lengths = dict.fromkeys(names, data["max_length"]) | lengths
    return PreviewRequest(fields, draft.defaults, lengths, price)


def _is_length(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LENGTH


def _preview_json(found: Preview) -> dict[str, Any]:
    data = asdict(found)
    data["price"] = None if found.price is None else str(found.price)
    data["ucs2_chars"] = list(found.ucs2_chars)
    data["part_lengths"] = list(found.part_lengths)
    return data


def _row_json(row: TemplateRow) -> dict[str, Any]:
    data = asdict(row)
    data["updated_at"] = row.updated_at.isoformat() if row.updated_at else None
    return data


def _chosen(request: web.Request, rows: list[TemplateRow]) -> TemplateRow | None:
    wanted = request.query.get("id", "")
    return next((row for row in rows if str(row.id) == wanted), None)


async def _saving(work: Any) -> Any:
    try:
        return await work
    except template_store.DuplicateName:
        raise AdminError("another template has this name", "name", 409, "conflict") from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise AdminError("the body must be a JSON object", None, 400, "bad_json") from None
    if not isinstance(data, dict):
        raise AdminError("the body must be a JSON object", None, 400, "bad_json")
    return data


def _id(request: web.Request) -> int:
    found = int(request.match_info["id"])
    if found > MAX_ID:
        raise AdminError("no such template", "id", 404, "not_found")
    return found


def _str(value: Any, field: str, most: int) -> str:
    if not isinstance(value, str):
        raise AdminError("must be a string", field)
    if len(value) > most:
        raise AdminError(f"at most {most} characters", field)
    return value


def _bool(data: Mapping[str, Any], field: str) -> bool:
    value = data.get(field, False)
    if not isinstance(value, bool):
        raise AdminError("must be true or false", field)
    return value
