"""``POST /v1/conversions``: the company's systems report what contacts did.

One object, or a list of up to 1000. Each is parsed alone: a bad one is refused by its
index and field while the others are stored (the gateway's batch API answers the same
way). A list is answered 200 with ``accepted`` and ``rejected``; a single object 201 (200
when its external_id was already stored) or 422 naming the field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from admin.adapters.attribution_store import Stored
from admin.core.conversions import MAX_BATCH, Conversion, InvalidConversion, parse_conversion
from admin.core.roles import Permission
from admin.http.auth import audit, require_token
from admin.http.errors import AdminError
from admin.http.keys import ADMIN
from admin.services import conversions


async def post_conversions(request: web.Request) -> web.Response:
    token = await require_token(request, Permission.integration)
    body = await _json(request)
    single = isinstance(body, dict)
    items = [body] if single else body
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise AdminError(f"an object or a list of 1 to {MAX_BATCH}", "conversions")
    parsed, rejected = _parse(items, datetime.now(UTC))
    admin = request.app[ADMIN]
    window = timedelta(hours=admin.settings.conversion_window_h)
    stored, unknown = await conversions.record(
        admin.pool, [c for _, c in parsed], window, token.name
    )
    rejected += [_rejected(parsed[u.index][0], u.field, "no such contact", "unknown_contact")
                 for u in unknown]  # fmt: skip
    accepted = [_accepted(parsed[i][0], s) for i, s in stored]
    await audit(
        request, "conversions.post", "", {"stored": len(accepted), "refused": len(rejected)}
    )
    return _reply(single, accepted, sorted(rejected, key=lambda r: int(r["index"])))


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AdminError("the body is not JSON", "body", 400, "bad_json") from None


def _parse(
    items: list[Any], now: datetime
) -> tuple[list[tuple[int, Conversion]], list[dict[str, Any]]]:
    parsed, rejected = [], []
    for index, item in enumerate(items):
        try:
            parsed.append((index, parse_conversion(item, now)))
        except InvalidConversion as exc:
            rejected.append(_rejected(index, exc.field, exc.message, "invalid"))
    return parsed, rejected


def _rejected(index: int, field: str, message: str, code: str) -> dict[str, Any]:
    return {"index": index, "code": code, "message": message, "field": field}


def _accepted(index: int, stored: Stored) -> dict[str, Any]:
    return {
        "index": index,
        "id": str(stored.id),
        "external_id": stored.external_id,
        "campaign_id": stored.campaign_id,
        "duplicate": stored.duplicate,
    }


def _reply(
    single: bool, accepted: list[dict[str, Any]], rejected: list[dict[str, Any]]
) -> web.Response:
    if not single:
        status = 200 if accepted else 422
        return web.json_response({"accepted": accepted, "rejected": rejected}, status=status)
    if rejected:
        error = {k: v for k, v in rejected[0].items() if k != "index"}
        return web.json_response({"error": error}, status=422)
    [found] = accepted
    return web.json_response(found, status=200 if found["duplicate"] else 201)


def routes() -> list[web.RouteDef]:
    return [web.post("/v1/conversions", post_conversions)]
