"""HTTP API for one-time passwords: send a code, check it, see pumping alerts.

``POST /v1/otp`` sends a code by SMS (``otp`` priority) and answers the challenge id,
never the code; ``POST /v1/otp/{id}/check`` answers 200 once, then 410. The per-IP
counter counts the end user's address given as ``ip``; without it, the caller's own.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.adapters.client_store import Client
from gateway.adapters.otp_store import PumpingCounters, alerts
from gateway.core import otp
from gateway.core.errors import NotFound, ValidationError
from gateway.core.message import NewMessage
from gateway.core.otp import InvalidOtp, OtpRequest
from gateway.core.validation import Invalid, parse_message
from gateway.http.handlers import authenticated, json_dumps, read_json, request_context
from gateway.http.keys import GATEWAY
from gateway.services.otp import OtpService, refusal_error

OTP: web.AppKey[OtpService] = web.AppKey("otp")
log = logging.getLogger("gateway.otp")


async def post_otp(request: web.Request) -> web.Response:
    client = await authenticated(request)
    service = request.app[OTP]
    try:
        parsed = otp.parse_request(await read_json(request), service.settings)
    except InvalidOtp as exc:
        raise ValidationError.of(exc.error) from None
    parsed = _with_peer(parsed, request)
    code = otp.new_code(parsed.length)
    message = _message(request, client, parsed, otp.render(parsed.text, code))
    sent = await service.send(parsed, message, code, client.limits)
    body = {
        "id": str(sent.challenge.id),
        "to": sent.challenge.destination,
        "expires_at": sent.challenge.expires_at,
        "message_id": sent.challenge.message_id and str(sent.challenge.message_id),
        "duplicate": sent.duplicate,
    }
    return web.json_response(body, status=200 if sent.duplicate else 202, dumps=json_dumps)


def _with_peer(parsed: OtpRequest, request: web.Request) -> OtpRequest:
    if parsed.ip is not None or request.remote is None:
        return parsed
    try:
        peer = ipaddress.ip_address(request.remote)
    except ValueError:  # a unix socket
        return parsed
    return dataclasses.replace(parsed, ip=otp.ip_subject(peer))


def _message(request: web.Request, client: Client, parsed: OtpRequest, text: str) -> NewMessage:
    """The SMS, validated by the rules of ``POST /v1/messages`` (same field names)."""
    data: dict[str, Any] = {"to": parsed.to, "text": text, "priority": "otp"}
    data["validity"] = parsed.ttl_s  # an SMS that arrives after its code expired is noise
    if parsed.sender is not None:
        data["from"] = parsed.sender
    try:
        return parse_message(data, request_context(request, client))
    except Invalid as exc:
        raise ValidationError.of(exc.error) from None


async def check_otp(request: web.Request) -> web.Response:
    client = await authenticated(request)
    challenge_id = _challenge_id(request)
    body = await read_json(request)
    try:
        code = otp.parse_code(body.get("code") if isinstance(body, dict) else None)
    except InvalidOtp as exc:
        raise ValidationError.of(exc.error) from None
    checked = await request.app[OTP].check(client.id, challenge_id, code)
    if checked is None:
        raise NotFound("no such OTP challenge", "id")
    error = refusal_error(checked)
    if error is not None:
        raise error
    return web.json_response({"id": str(challenge_id), "verified": True})


def _challenge_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound("no such OTP challenge", "id")
    return int(raw)


async def get_alerts(request: web.Request) -> web.Response:
    client = await authenticated(request)
    raw = request.query.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        raise ValidationError("an integer from 1 to 1000", "limit")
    found = await alerts(request.app[GATEWAY].pool, client.id, int(raw))
    return web.json_response({"alerts": found}, dumps=json_dumps)


async def _service(app: web.Application) -> AsyncIterator[None]:
    gateway = app[GATEWAY]
    assert gateway.ids is not None, "the gateway is open"
    secret = gateway.settings.otp_secret
    if secret is None:
        log.info("no otp_secret: OTP codes are hashed with their salt alone")
    counters = PumpingCounters(gateway.redis, gateway.settings.queue.prefix)
    app[OTP] = OtpService(
        gateway.settings.otp,
        secret.reveal().encode() if secret else b"",
        gateway.pool,
        counters,
        gateway.submit,
        gateway.ids,
    )
    yield


def setup(app: web.Application) -> None:
    """Register the OTP endpoints and their service on the gateway's app."""
    app.cleanup_ctx.append(_service)
    app.add_routes(
        [
            web.post("/v1/otp", post_otp),
            web.post("/v1/otp/{id}/check", check_otp),
            web.get("/v1/otp/alerts", get_alerts),
        ]
    )
