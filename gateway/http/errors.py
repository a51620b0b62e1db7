"""Every error leaves as JSON naming the field; nothing leaves as a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.adapters.failures import TRANSIENT
from gateway.core.errors import GatewayError, LimitExceeded, Overloaded, whole_seconds
from gateway.core.masking import scrub
from gateway.metrics import families

log = logging.getLogger("gateway.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: GatewayError) -> web.Response:
    _count(error)
    response = web.json_response(error.to_json(), status=error.status)
    if error.retry_after is not None:  # 429 and 503: when to come back
        response.headers["Retry-After"] = str(whole_seconds(error))
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        body = {"error": {"code": exc.reason.lower().replace(" ", "_"), "message": exc.reason}}
        families.API_ERRORS.inc(str(exc.status), families.code_label(body["error"]["code"]))
        return web.json_response(body, status=exc.status, headers=_kept_headers(exc))
    except TRANSIENT as exc:  # PostgreSQL or Redis down or restarting: come back, not a bug
        log.warning("%s %s: server unavailable: %r", request.method, scrub(request.path), exc)
        return error_response(Overloaded("a backing server is unavailable; retry", 1.0))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, scrub(request.path))
        body = {"error": {"code": "internal", "message": "internal error, logged"}}
        families.API_ERRORS.inc("500", "internal")
        return web.json_response(body, status=500)


def _count(error: GatewayError) -> None:
    if isinstance(error, LimitExceeded):
        families.API_REFUSED.inc(error.limit_name or error.code)
    families.API_ERRORS.inc(str(error.status), error.code)


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
