"""Routing and provider-facing endpoints: simulate a route, price a message, take receipts."""

from __future__ import annotations

from aiohttp import web

from gateway.core.errors import CallbackRefused, NotFound, ValidationError
from gateway.core.numbers import InvalidNumber, to_e164
from gateway.core.validation import Invalid, parse_message
from gateway.http.handlers import authenticated, read_json, request_context
from gateway.http.keys import GATEWAY
from providers.http.parse import CallbackRejected
from routing import decision_to_dict, quote, quote_to_dict, rates, rates_to_list
from routing.explain import destination_to_dict

_CLASSES = ("otp", "transactional", "bulk")


async def post_simulate(request: web.Request) -> web.Response:
    """The route a message would take now, its price and why; nothing is sent."""
    client = await authenticated(request)
    try:
        message = parse_message(await read_json(request), request_context(request, client))
    except Invalid as exc:
        raise ValidationError.of(exc.error) from None
    decision = await request.app[GATEWAY].simulate(message)
    reply = {"to": message.destination, "parts": message.parts, "encoding": message.encoding}
    return web.json_response({**reply, **decision_to_dict(decision)})


async def get_rates(request: web.Request) -> web.Response:
    """``GET /v1/rates?to=…[&parts=N][&priority=…]``: each route's price for a number."""
    await authenticated(request)
    gateway = request.app[GATEWAY]
    to = _number(request.query.get("to", ""), gateway.settings.default_region)
    parts = _parts(request.query.get("parts", "1"))
    klass = request.query.get("priority")
    if klass is not None and klass not in _CLASSES:
        raise ValidationError(f"one of {', '.join(_CLASSES)}", "priority")
    table = gateway.settings.routing
    found = quote(table, to, parts, klass or "transactional")
    return web.json_response(
        {
            "to": to,
            "destination": destination_to_dict(table.resolve(to)),
            "rates": rates_to_list(rates(table, to, klass)),
            "quote": quote_to_dict(found) if found else None,
        }
    )


def _number(raw: str, region: str) -> str:
    try:
        return to_e164(raw, region)
    except InvalidNumber as exc:
        raise ValidationError(str(exc), "to") from None


def _parts(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 255:  # "²".isdigit()
        raise ValidationError("an integer from 1 to 255", "parts")
    return int(raw)


async def post_receipts(request: web.Request) -> web.Response:
    """An HTTP provider's receipts and inbound messages; 2xx only once they are durable,
    so that a provider retries what a crash would otherwise lose."""
    gateway = request.app[GATEWAY]
    provider = gateway.callbacks.get(request.match_info["provider"])
    if provider is None:
        raise NotFound("no HTTP provider of that name", "provider")
    try:
        result = await provider.handle_callback(
            request.headers, await request.read(), str(request.url)
        )
    except CallbackRejected as exc:
        raise CallbackRefused(exc.status, exc.reason) from None
    return web.json_response({"receipts": len(result.receipts), "inbound": len(result.inbound)})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/v1/routes/simulate", post_simulate),
        web.get("/v1/rates", get_rates),
        web.post("/v1/receipts/{provider}", post_receipts),
    ]
