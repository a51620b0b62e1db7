"""Operators' routing endpoints (scope ``operator``): the shared override of routes and
prices, providers disabled and enabled (``gateway/services/routing_admin.py``).

``by`` in a body names the person behind the change (the admin UI passes its user), kept
with the change; ``version`` in a PUT is the one read: a stale one is refused (409).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from aiohttp import web

from gateway.adapters import routing_admin_store
from gateway.core.errors import ValidationError
from gateway.http.handlers import authenticated, read_json
from gateway.http.keys import GATEWAY

_BY_MAX = 200
_WINDOW_MAX = 7 * 86400


async def get_routing(request: web.Request) -> web.Response:
    await authenticated(request)
    return web.json_response(request.app[GATEWAY].routing_admin.describe())


async def put_routing(request: web.Request) -> web.Response:
    await authenticated(request)
    body = await _object(request)
    if "document" not in body:
        raise ValidationError('required: {"routes": [...]}, or null for the file\'s', "document")
    admin = request.app[GATEWAY].routing_admin
    await admin.put(body["document"], _version(body.get("version")), _by(body))
    return web.json_response(admin.describe())


async def post_disable(request: web.Request) -> web.Response:
    return await _set_disabled(request, True)


async def post_enable(request: web.Request) -> web.Response:
    return await _set_disabled(request, False)


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    await authenticated(request)
    body = await _object(request) if request.body_exists else {}
    admin = request.app[GATEWAY].routing_admin
    await admin.set_disabled(request.match_info["name"], disabled, _by(body))
    return web.json_response(admin.describe())


async def _object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationError("must be a JSON object", "body")
    return body


def _version(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValidationError("an integer: the version read, or null", "version")


def _by(body: dict[str, Any]) -> str | None:
    by = body.get("by")
    if by is None or (isinstance(by, str) and 0 < len(by) <= _BY_MAX and "\x00" not in by):
        return by
    raise ValidationError(f"a non-empty string of at most {_BY_MAX} characters", "by")


async def get_delivery(request: web.Request) -> web.Response:
    """``GET /v1/providers/delivery?window_s=900``: each provider's outcomes of the messages
    accepted in the window: submitted, delivered, undelivered, rate, median time."""
    await authenticated(request)
    window = _window(request.query.get("window_s", "900"))
    since_ms = int((time.time() - window) * 1000)
    found = await routing_admin_store.delivery(request.app[GATEWAY].pool, since_ms)
    body = {name: {**asdict(d), "delivery_rate": d.rate} for name, d in found.items()}
    return web.json_response({"window_s": window, "providers": body})


def _window(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not 60 <= int(raw) <= _WINDOW_MAX:
        raise ValidationError(f"seconds, from 60 to {_WINDOW_MAX}", "window_s")
    return int(raw)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/providers/delivery", get_delivery),
        web.get("/v1/admin/routing", get_routing),
        web.put("/v1/admin/routing", put_routing),
        web.post("/v1/admin/providers/{name}/disable", post_disable),
        web.post("/v1/admin/providers/{name}/enable", post_enable),
    ]
