"""The API's gate: request limits before anything else, then the key's scope.

``limits_middleware`` counts every request against its client IP and the API key it
presents before the key is looked up, so a flood of bad keys is stopped per IP and
costs no database query. ``check_scope`` is called by ``authenticated`` with the
route's entry in ``gateway/core/access.ROUTE_SCOPES``: handlers hold no scope rules.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.adapters.api_limiter import ApiLimiter
from gateway.adapters.client_store import Client
from gateway.core.access import required_scope
from gateway.core.errors import ScopeMissing
from gateway.http.errors import Handler


def presented_key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() or request.headers.get("X-API-Key", "")


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def check_scope(request: web.Request, client: Client) -> None:
    needed = required_scope(request.method, route_of(request))
    if needed is not None and needed not in client.scopes:
        raise ScopeMissing(needed.value)


def limits_middleware(limiter: ApiLimiter) -> Middleware:
    @web.middleware
    async def limit_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        address = limiter.address(request.remote, request.headers.get("X-Forwarded-For"))
        await limiter.admit(address, presented_key(request) or None)
        return await handler(request)

    return limit_requests
