"""HTTP handlers: parse and validate once, call a service, shape the reply."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from gateway.adapters import message_store
from gateway.adapters.client_store import Client
from gateway.core.billing import next_utc_midnight
from gateway.core.errors import AuthError, MalformedBody, NotFound, ValidationError
from gateway.core.message import Accepted
from gateway.core.ssrf import parse_networks
from gateway.core.storable import nul_path
from gateway.core.validation import Context, Invalid, parse_message
from gateway.http.access import check_scope, presented_key
from gateway.http.keys import GATEWAY
from gateway.http.openapi import OPENAPI
from gateway.services.submit import Balance

YIELD_EVERY = 200  # messages of a batch parsed per turn of the event loop


async def _json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise MalformedBody(f"the body is not valid JSON: {exc}", "body") from None
    field = nul_path(value) if b"\\u0000" in raw else None  # the scan only when one may be
    if field is not None:
        raise ValidationError("NUL (\\u0000) is not accepted", field or "body")
    return value


async def _client(request: web.Request) -> Client:
    key = presented_key(request)
    client = await request.app[GATEWAY].authenticate(key) if key else None
    if client is None:
        raise AuthError("a valid API key is required (Authorization: Bearer <key>)", "api_key")
    check_scope(request, client)
    return client


authenticated = _client  # for the other handler modules


def _context(request: web.Request, client: Client) -> Context:
    settings = request.app[GATEWAY].settings
    return Context(
        client_id=client.id,
        now=datetime.now(UTC),
        default_region=settings.default_region,
        default_sender=client.default_sender,
        callback_url=client.callback_url,
        max_parts=settings.max_parts,
        allowed_senders=client.allowed_senders,
        callback_networks=parse_networks(settings.webhooks.allow_networks),
    )


request_context = _context
read_json = _json


def _accepted_json(item: Accepted) -> dict[str, Any]:
    m = item.message
    return {
        "id": str(item.id),
        "status": item.state.label,
        "duplicate": item.duplicate,
        "to": m.destination,
        "client_ref": m.client_ref,
        "encoding": m.encoding,
        "parts": m.parts,
        "priority": m.priority.label,
    }


async def post_message(request: web.Request) -> web.Response:
    client = await _client(request)
    try:
        message = parse_message(await _json(request), _context(request, client))
    except Invalid as exc:
        raise ValidationError.of(exc.error) from None
    [item] = await request.app[GATEWAY].submit.accept([message], client.limits)
    return web.json_response(_accepted_json(item), status=200 if item.duplicate else 202)


async def post_batch(request: web.Request) -> web.Response:
    client = await _client(request)
    body = await _json(request)
    items = body.get("messages") if isinstance(body, dict) else None
    limit = request.app[GATEWAY].settings.http.max_batch
    if not isinstance(items, list) or not 1 <= len(items) <= limit:
        raise ValidationError(f"a list of 1 to {limit} messages", "messages")
    ctx = _context(request, client)
    valid, rejected = [], []
    for index, data in enumerate(items):
        if index and not index % YIELD_EVERY:  # 1000 messages are ~18 ms of one turn of the
            await asyncio.sleep(0)  # loop: let an OTP's request and dispatch's steps between
        try:
            valid.append((index, parse_message(data, ctx, f"messages[{index}].")))
        except Invalid as exc:
            rejected.append({"index": index, **exc.error.to_json()})
    if not valid:
        return _fast_json({"accepted": [], "rejected": rejected}, status=422)
    accepted = await request.app[GATEWAY].submit.accept([m for _, m in valid], client.limits)
    reply = [{"index": i, **_accepted_json(a)} for (i, _), a in zip(valid, accepted, strict=True)]
    return _fast_json({"accepted": reply, "rejected": rejected}, status=202)


def _fast_json(value: dict[str, Any], status: int) -> web.Response:
    """orjson: a thousand items encoded ten times faster than by ``json`` (plain str, int,
    bool and None here: the same JSON, only without spaces and with UTF-8 for non-ASCII).
    A lone surrogate (an unknown field's name may hold one) only ``json`` can escape."""
    try:
        body = orjson.dumps(value)
    except orjson.JSONEncodeError:
        body = json.dumps(value).encode()
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


async def get_message(request: web.Request) -> web.Response:
    client = await _client(request)
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise NotFound("no such message", "id")
    found = await message_store.get(request.app[GATEWAY].pool, int(raw), client.id)
    if found is None:
        raise NotFound("no such message", "id")
    return web.json_response(found, dumps=_dumps)


async def get_balance(request: web.Request) -> web.Response:
    client = await _client(request)
    found = await request.app[GATEWAY].submit.balance(client.id, client.limits)
    return web.json_response(_balance_json(found), dumps=_dumps)


def _balance_json(found: Balance) -> dict[str, Any]:
    account, limits = found.account, found.limits
    resets = next_utc_midnight(datetime.now(UTC)) if limits.daily_quota is not None else None
    return {
        "billed": account is not None,
        "balance": account and account.balance,
        "credit_limit": account and account.credit_limit,
        "held": account and account.held,
        "available": account and account.available,
        "tps": limits.tps,
        "daily_quota": limits.daily_quota,
        "used_today": found.used_today,
        "quota_resets_at": resets,
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_default)


json_dumps = _dumps  # for the other handler modules


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # Decimal prices and 64-bit ids travel as strings


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    checks = await request.app[GATEWAY].readiness()
    status = 200 if all(checks.values()) else 503
    return web.json_response({"ready": status == 200, "checks": checks}, status=status)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/v1/messages", post_message),
        web.post("/v1/messages/batch", post_batch),
        web.get("/v1/messages/{id}", get_message),
        web.get("/v1/balance", get_balance),
        web.get("/v1/health", health),
        web.get("/v1/ready", ready),
        web.get("/v1/openapi.json", openapi),
    ]
