"""Request bodies are bounded in size and in time, and refused before they are read whole.

``body_middleware`` reads every request body once, before any handler (they then get it
from aiohttp's cache): a Content-Length over ``max_body_bytes`` is refused (413) without
reading a byte of it; a chunked body is cut off (413) as soon as it passes the limit; a
body that has not fully arrived within ``body_timeout_s`` is refused (408). Each answer
names the field ``body`` and says the connection is closing; the server then reads and
drops what follows for at most ``linger_s`` before it closes (``smsgw.runner`` passes that
and ``idle_timeout_s``, the bound on a slow request head, to aiohttp).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError

from gateway.core.errors import (
    GatewayError,
    MalformedBody,
    PayloadTooLarge,
    RequestTimeout,
    ValidationError,
)
from gateway.http.errors import Handler, error_response
from gateway.settings import HttpSettings


def body_middleware(settings: HttpSettings) -> Middleware:
    @web.middleware
    async def bounded_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        for name, value in (*request.query.items(), *request.match_info.items()):
            if "\0" in value:  # PostgreSQL text refuses NUL (gateway.core.storable)
                return error_response(ValidationError("NUL is not accepted", name))
        if request.can_read_body:
            try:
                await _read(request, settings)
            except GatewayError as error:
                return _closing(error_response(error))
        return await handler(request)

    return bounded_body


async def _read(request: web.Request, settings: HttpSettings) -> None:
    limit = settings.max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is {declared} octets; the limit is {limit}", "body")
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body is over the limit of {limit} octets", "body") from None
    except RequestPayloadError as exc:  # a broken chunked encoding or compression
        raise MalformedBody(f"the body cannot be read: {exc}", "body") from None
    except TimeoutError:
        message = f"the body did not arrive within {settings.body_timeout_s:g} s"
        raise RequestTimeout(message, "body") from None


def _closing(response: web.Response) -> web.Response:
    response.force_close()  # the rest of the body is never read as a next request
    return response
