"""The OTP endpoints' part of the OpenAPI document (merged in ``openapi.py``)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or _ERROR}},
    }


_OTP_IN = {
    "type": "object",
    "required": ["to"],
    "additionalProperties": False,
    "properties": {
        "to": {"type": "string", "description": "phone number (normalised to E.164)"},
        "text": {
            "type": "string",
            "maxLength": 400,
            "description": "template with {code} exactly once; default from [otp] text",
        },
        "from": {"type": "string", "description": "sender id; defaults to the client's"},
        "ttl": {"type": "integer", "minimum": 30, "description": "seconds; default 300"},
        "length": {"type": "integer", "minimum": 4, "maximum": 10, "default": 6},
        "client_ref": {"type": "string", "maxLength": 128, "description": "idempotency key"},
        "ip": {
            "type": "string",
            "description": "the end user's IP (per-IP cap; IPv6 per /64); default: the caller's",
        },
    },
}

_SENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the challenge id (the code is never returned)"},
        "to": {"type": "string"},
        "expires_at": {"type": "string", "format": "date-time"},
        "message_id": {"type": "string", "description": "the SMS carrying the code"},
        "duplicate": {"type": "boolean"},
    },
}

LIMITS = ("otp_destination", "otp_prefix", "otp_ip", "otp_country_daily")
ERROR_MEMBERS: dict[str, Any] = {
    "window_s": {"type": "integer", "description": "429 otp_limited: the window (0: UTC day)"},
    "tries_left": {"type": "integer", "description": "OTP check: tries the code has left"},
}

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS: dict[str, Any] = {
    "/v1/otp": {
        "post": {
            "summary": "Send a one-time code by SMS (otp priority), guarded against pumping",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _OTP_IN}}},
            "responses": {
                "202": _answer("sent: the challenge", _SENT),
                "200": _answer("duplicate client_ref: the existing challenge", _SENT),
                "400": _answer("malformed JSON"),
                "401": _answer("no or unknown API key"),
                "402": _answer("insufficient funds"),
                "413": _answer("body too large"),
                "422": _answer("a field is wrong (named)"),
                "429": _answer(
                    "a pumping counter (limit: otp_destination, otp_prefix, otp_ip, "
                    "otp_country_daily; value, window_s) or a client limit; Retry-After"
                ),
                "503": _answer("overloaded; Retry-After"),
            },
        }
    },
    "/v1/otp/{id}/check": {
        "post": {
            "summary": "Check a code: verifies once; each check spends a try",
            "parameters": [_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["code"],
                            "properties": {"code": {"type": "string", "example": "482913"}},
                        }
                    }
                },
            },
            "responses": {
                "200": _answer(
                    "verified",
                    {"type": "object", "properties": {"verified": {"const": True}}},
                ),
                "400": _answer("malformed JSON"),
                "401": _answer("no or unknown API key"),
                "404": _answer("no such challenge for this client"),
                "413": _answer("body too large"),
                "410": _answer("otp_used (verified before or superseded) or otp_expired"),
                "422": _answer("otp_wrong_code with tries_left, or a malformed code"),
                "423": _answer("otp_locked: no tries left"),
                "503": _answer("the database is unavailable; Retry-After"),
            },
        }
    },
    "/v1/otp/alerts": {
        "get": {
            "summary": "Pumping alerts: a counter that started refusing (one per window)",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                }
            ],
            "responses": {
                "200": _answer("newest first", {"type": "object"}),
                "401": _answer("no or unknown API key"),
                "422": _answer("limit is not an integer from 1 to 1000"),
            },
        }
    },
}
