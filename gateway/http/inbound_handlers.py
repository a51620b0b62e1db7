"""HTTP API for inbound messages and the opt-out list.

``GET /v1/inbound`` shows a client the inbound messages its forwarding rules took (newest
first). The opt-out list is one list for the whole gateway; a client lists the entries it
added or that came as a STOP to its numbers, may ask about any number, and may remove
only what it added itself: a subscriber's own STOP is undone only by the subscriber.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.adapters import inbound_store
from gateway.adapters.inbound_store import OptOut
from gateway.core.errors import Conflict, NotFound, ValidationError
from gateway.core.numbers import InvalidNumber, to_e164
from gateway.http.handlers import authenticated, json_dumps, read_json
from gateway.http.keys import GATEWAY

MAX_NUMBERS = 1000


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValidationError(f"an integer from {low} to {high}", name)
    return int(raw)


def _number(request: web.Request, raw: Any, field: str) -> str:
    if not isinstance(raw, str):
        raise ValidationError("a phone number as a string", field)
    try:
        return to_e164(raw, request.app[GATEWAY].settings.default_region)
    except InvalidNumber as exc:
        raise ValidationError(f"not a phone number: {exc}", field) from None


async def get_inbound(request: web.Request) -> web.Response:
    client = await authenticated(request)
    limit = _int_param(request, "limit", 100, 1, 1000)
    before = _int_param(request, "before", 2**63 - 1, 1, 2**63 - 1)
    found = await inbound_store.recent(request.app[GATEWAY].pool, client.id, before, limit)
    for message in found:
        message["id"] = str(message["id"])
    cursor = found[-1]["id"] if len(found) == limit else None
    return web.json_response({"messages": found, "next_before": cursor}, dumps=json_dumps)


def _opt_out_json(entry: OptOut) -> dict[str, Any]:
    return {
        "number": entry.number,
        "since": entry.since.isoformat(),
        "via": entry.via,
        "keyword": entry.keyword,
    }


async def list_opt_outs(request: web.Request) -> web.Response:
    client = await authenticated(request)
    limit = _int_param(request, "limit", 100, 1, 1000)
    after = request.query.get("after", "")
    found = await inbound_store.listing(request.app[GATEWAY].pool, client.id, after, limit)
    cursor = found[-1].number if len(found) == limit else None
    return web.json_response({"opt_outs": [_opt_out_json(e) for e in found], "next_after": cursor})


async def get_opt_out(request: web.Request) -> web.Response:
    await authenticated(request)
    number = _number(request, request.match_info["number"], "number")
    entry = await inbound_store.get(request.app[GATEWAY].pool, number)
    body: dict[str, Any] = {"number": number, "opted_out": entry is not None}
    if entry is not None:
        body |= {"since": entry.since.isoformat(), "via": entry.via}
    return web.json_response(body)


async def post_opt_outs(request: web.Request) -> web.Response:
    client = await authenticated(request)
    body = await read_json(request)
    raw = body.get("numbers") if isinstance(body, dict) else None
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_NUMBERS:
        raise ValidationError(f"a list of 1 to {MAX_NUMBERS} phone numbers", "numbers")
    numbers = [_number(request, n, f"numbers[{i}]") for i, n in enumerate(raw)]
    added = await inbound_store.add(request.app[GATEWAY].pool, numbers, client.id)
    return web.json_response({"numbers": numbers, "added": added})


async def delete_opt_out(request: web.Request) -> web.Response:
    client = await authenticated(request)
    number = _number(request, request.match_info["number"], "number")
    pool = request.app[GATEWAY].pool
    if await inbound_store.remove(pool, number, client.id):
        return web.Response(status=204)
    if await inbound_store.get(pool, number) is None:
        raise NotFound("this number is not on the opt-out list", "number")
    raise Conflict(
        "only the subscriber (by SMS: START) or the client that added it can remove it", "number"
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/inbound", get_inbound),
        web.get("/v1/opt-outs", list_opt_outs),
        web.post("/v1/opt-outs", post_opt_outs),
        web.get("/v1/opt-outs/{number}", get_opt_out),
        web.delete("/v1/opt-outs/{number}", delete_opt_out),
    ]
