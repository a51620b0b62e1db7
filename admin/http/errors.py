"""The admin's errors: JSON naming the field for the APIs, a page for people."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.adapters.failures import TRANSIENT

log = logging.getLogger("admin.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminError(Exception):
    def __init__(
        self, message: str, field: str | None = None, status: int = 422, code: str = "invalid"
    ) -> None:
        super().__init__(message)
        self.message, self.field, self.status, self.code = message, field, status, code

    def to_json(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def wants_json(request: web.Request) -> bool:
    path = request.path
    return path.startswith(("/api/", "/v1/")) or "application/json" in request.headers.get(
        "Accept", ""
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminError as exc:
        return _reply(request, exc)
    except web.HTTPException:
        raise
    except TRANSIENT as exc:  # PostgreSQL or Redis down: come back, not a bug
        log.warning("%s %s: store unavailable: %r", request.method, request.path, exc)
        return _reply(request, AdminError("try again shortly", None, 503, "unavailable"))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _reply(request, AdminError("internal error", None, 500, "internal"))


def _reply(request: web.Request, exc: AdminError) -> web.Response:
    if wants_json(request):
        return web.json_response(exc.to_json(), status=exc.status)
    from admin.http.render import render_error  # render imports this module

    return render_error(request, exc)
