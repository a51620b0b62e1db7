"""The OpenAPI 3.1 document served at /v1/openapi.json."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "the request field at fault"},
            },
        }
    },
}

_MESSAGE_IN = {
    "type": "object",
    "required": ["to", "text"],
    "additionalProperties": False,
    "properties": {
        "to": {
            "type": "string",
            "description": "phone number; normalised to E.164 using the "
            "default region (8 921 123-45-67 → +79211234567)",
            "example": "+79211234567",
        },
        "text": {"type": "string", "minLength": 1, "description": "GSM-7 or UCS-2 (Cyrillic)"},
        "from": {
            "type": "string",
            "description": "sender id: up to 11 letters/digits, or "
            "up to 15 digits; defaults to the client's",
        },
        "priority": {
            "type": "string",
            "enum": ["otp", "transactional", "bulk"],
            "default": "transactional",
        },
        "client_ref": {
            "type": "string",
            "maxLength": 128,
            "description": "idempotency key: the same ref twice yields one message",
        },
        "send_at": {"type": "string", "format": "date-time", "description": "schedule"},
        "validity": {"type": "integer", "minimum": 30, "description": "seconds until expiry"},
        "callback_url": {
            "type": "string",
            "format": "uri",
            "description": "status webhook (Standard Webhooks signature)",
        },
    },
}

_ACCEPTED = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "64-bit id, as a string"},
        "status": {"type": "string"},
        "duplicate": {"type": "boolean"},
        "to": {"type": "string"},
        "client_ref": {"type": ["string", "null"]},
        "encoding": {"type": "string", "enum": ["gsm7", "ucs2"]},
        "parts": {"type": "integer"},
        "priority": {"type": "string"},
    },
}

_STATUSES = [
    "accepted",
    "queued",
    "submitted",
    "delivered",
    "undeliverable",
    "expired",
    "rejected",
    "failed",
]


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    result: dict[str, Any] = dict(ok)
    for code in codes:
        result[str(code)] = {"description": "error", **error}
    return result


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "smsgw",
        "version": "1",
        "description": "Send SMS over HTTP; statuses by webhook and by GET.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Error": _ERROR, "MessageIn": _MESSAGE_IN, "Accepted": _ACCEPTED},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/messages": {
            "post": {
                "summary": "Send one message",
                "requestBody": _json_body({"$ref": "#/components/schemas/MessageIn"}),
                "responses": _responses(
                    {
                        "202": {
                            "description": "accepted (committed)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Accepted"}
                                }
                            },
                        },
                        "200": {"description": "duplicate client_ref: the existing message"},
                    },
                    400,
                    401,
                    413,
                    422,
                    503,
                ),
            }
        },
        "/v1/messages/batch": {
            "post": {
                "summary": "Send up to 1000 messages; invalid items are reported, valid accepted",
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "required": ["messages"],
                        "properties": {
                            "messages": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 1000,
                                "items": {"$ref": "#/components/schemas/MessageIn"},
                            }
                        },
                    }
                ),
                "responses": _responses(
                    {"202": {"description": "accepted and rejected items"}}, 400, 401, 413, 422, 503
                ),
            }
        },
        "/v1/messages/{id}": {
            "get": {
                "summary": "A message's state, timestamps, provider, price and error",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": _responses(
                    {
                        "200": {
                            "description": "the message",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "status": {"type": "string", "enum": _STATUSES}
                                        },
                                    }
                                }
                            },
                        }
                    },
                    401,
                    404,
                ),
            }
        },
        "/v1/health": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {"200": {"description": "alive"}},
            }
        },
        "/v1/ready": {
            "get": {
                "summary": "Readiness: database, queue and providers",
                "security": [],
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
    },
}
