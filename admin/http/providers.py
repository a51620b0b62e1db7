"""The providers page: live figures per provider, providers off and on, routes and prices.

Everything comes from and goes to the gateway's operations API (``gateway.admin_client``):
the admin holds no provider state of its own. Seeing needs ``providers_read``; changing
needs ``providers_write`` and is audited. A change the gateway refuses comes back with the
field it named (``routes[1].price_per_part``), stripped of the gateway's ``document.``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from aiohttp import web

from admin.core.providers import CLASSES, SELECTORS, percent, provider_views, route_rows
from admin.core.roles import Permission, can
from admin.http.auth import audit, require
from admin.http.errors import AdminError
from admin.http.keys import ADMIN
from admin.http.render import render
from gateway.admin_client import GatewayAdminClient
from gateway.client import GatewayClientError, GatewayUnavailable

_NAME_MAX = 100


@asynccontextmanager
async def _gateway(request: web.Request) -> AsyncIterator[GatewayAdminClient]:
    settings = request.app[ADMIN].settings
    if settings.gateway_url is None or settings.gateway_api_key is None:
        raise AdminError("no gateway is configured for the admin", None, 503, "unavailable")
    try:
        async with GatewayAdminClient.open(
            settings.gateway_url, settings.gateway_api_key.reveal()
        ) as client:
            yield client
    except GatewayUnavailable as exc:
        raise AdminError(f"the gateway is unavailable: {exc}", None, 503, "unavailable") from None
    except GatewayClientError as exc:
        if exc.code == "scope_missing":  # the admin's configuration, not the user's doing
            message = f"the admin's gateway key needs the admin and operator scopes: {exc}"
            raise AdminError(message, None, 503, "gateway_key") from None
        field = exc.field.removeprefix("document.") if exc.field else None
        raise AdminError(str(exc), field, exc.status or 422, exc.code or "invalid") from None


async def _overview(request: web.Request, delivery_too: bool = True) -> dict[str, Any]:
    """The figures; the delivery ones scan recent messages, so a live refresh skips them."""
    async with _gateway(request) as gateway:
        pool = await gateway.providers()
        delivery = await gateway.delivery() if delivery_too else {}
        routing = await gateway.routing()
    views = provider_views(pool, delivery, routing["disabled"])
    return {"providers": views, "routing": routing}


async def page(request: web.Request) -> web.Response:
    user = await require(request, Permission.providers_read)
    found = await _overview(request)
    return render(
        request,
        "providers.html",
        providers=found["providers"],
        routing=found["routing"],
        rows=route_rows(found["routing"]["effective"]),
        selectors=SELECTORS,
        classes=CLASSES,
        percent=percent,
        may_write=can(user.role, Permission.providers_write),
    )


async def api_providers(request: web.Request) -> web.Response:
    """``?live=1``: the pool figures only (the page refreshes them every few seconds)."""
    await require(request, Permission.providers_read)
    found = await _overview(request, delivery_too=request.query.get("live") != "1")
    views = [asdict(v) for v in found["providers"]]
    return web.json_response({"providers": views, "routing": found["routing"]})


async def api_disable(request: web.Request) -> web.Response:
    return await _set_disabled(request, True)


async def api_enable(request: web.Request) -> web.Response:
    return await _set_disabled(request, False)


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    user = await require(request, Permission.providers_write)
    name = request.match_info["name"]
    if len(name) > _NAME_MAX:
        raise AdminError("no such provider", "name", 404, "not_found")
    async with _gateway(request) as gateway:
        routing = await gateway.set_disabled(name, disabled, user.email)
    await audit(request, "provider.disable" if disabled else "provider.enable", name)
    return web.json_response(routing)


async def api_put_routing(request: web.Request) -> web.Response:
    user = await require(request, Permission.providers_write)
    body = await _json_object(request)
    document, version = body.get("document"), body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise AdminError("the version read, an integer", "version")
    async with _gateway(request) as gateway:
        routing = await gateway.put_routing(document, version, user.email)
    routes = len(document.get("routes", [])) if isinstance(document, dict) else 0
    detail = {"version": routing["version"], "source": routing["source"], "routes": routes}
    await audit(request, "routing.update", "routes", detail)
    return web.json_response(routing)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise AdminError("the body is not valid JSON", "body", 400, "malformed_body") from None
    if not isinstance(body, dict):
        raise AdminError("must be a JSON object", "body")
    return body


def routes() -> list[web.RouteDef]:
    return [
        web.get("/providers", page),
        web.get("/api/providers", api_providers),
        web.post("/api/providers/{name}/disable", api_disable),
        web.post("/api/providers/{name}/enable", api_enable),
        web.put("/api/providers/routing", api_put_routing),
    ]
