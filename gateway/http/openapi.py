"""The OpenAPI 3.1 document served at /v1/openapi.json."""

from __future__ import annotations

from typing import Any

from gateway.http.access_openapi import with_access
from gateway.http.otp_openapi import ERROR_MEMBERS as OTP_ERROR_MEMBERS
from gateway.http.otp_openapi import LIMITS as OTP_LIMITS
from gateway.http.otp_openapi import PATHS as OTP_PATHS
from gateway.http.routes_openapi import PATHS as ROUTES_PATHS
from gateway.http.routing_admin_openapi import PATHS as ROUTING_ADMIN_PATHS

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
                "limit": {
                    "type": "string",
                    "enum": ["tps", "daily_quota", *OTP_LIMITS],
                    "description": "429: the client limit that was hit",
                },
                **OTP_ERROR_MEMBERS,
                "value": {"type": "integer", "description": "429: that limit's value"},
                "retry_after": {"type": "integer", "description": "429/503: seconds to wait"},
                "needed": {"type": "string", "description": "402: what the request would hold"},
                "available": {
                    "type": "string",
                    "description": "402: balance + credit limit (decimal string)",
                },
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

_BATCH_RESULT = {
    "type": "object",
    "required": ["accepted", "rejected"],
    "properties": {
        "accepted": {
            "type": "array",
            "items": {
                "allOf": [
                    {"$ref": "#/components/schemas/Accepted"},
                    {"type": "object", "properties": {"index": {"type": "integer"}}},
                ]
            },
        },
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "field", "code", "message"],
                "properties": {
                    "index": {"type": "integer"},
                    "field": {"type": "string", "description": "messages[i].<field>"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def _batch_responses() -> dict[str, Any]:
    """202 with both lists; 422 with the lists when every item was rejected, or the error
    naming ``messages`` when the list itself is wrong."""
    result = {"application/json": {"schema": {"$ref": "#/components/schemas/BatchResult"}}}
    either = {"anyOf": [{"$ref": "#/components/schemas/Error"}, _BATCH_RESULT]}
    responses = _responses(
        {"202": {"description": "accepted and rejected items", "content": result}},
        *(400, 401, 402, 413, 422, 429, 503),
    )
    responses["422"] = {
        "description": "every item rejected (the lists), or no list of 1 to 1000 messages",
        "content": {"application/json": {"schema": either}},
    }
    return _limited(responses)


_MONEY = {"type": ["string", "null"], "description": "decimal string; null when not billed"}

_BALANCE = {
    "type": "object",
    "properties": {
        "billed": {"type": "boolean", "description": "false: no balance is kept or enforced"},
        "balance": {**_MONEY, "description": "what is left, open holds already taken off"},
        "credit_limit": {**_MONEY, "description": "how far below zero the balance may go"},
        "held": {
            **_MONEY,
            "description": "held for messages not yet submitted: each at its dearest "
            "route; the difference to the real price comes back at submission, the whole "
            "hold if the message ends unsent",
        },
        "available": {**_MONEY, "description": "balance + credit limit"},
        "tps": {"type": ["integer", "null"], "description": "messages per second"},
        "daily_quota": {"type": ["integer", "null"], "description": "messages per UTC day"},
        "used_today": {
            "type": ["integer", "null"],
            "description": "messages taken today (null when the client has no limits)",
        },
        "quota_resets_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

_LIMITED = {
    "402": "insufficient_funds: the request's holds exceed balance + credit limit; "
    "nothing was stored or charged",
    "429": "rate_limited (tps) or daily_quota_exceeded; Retry-After says when to retry; "
    "nothing was stored or counted",
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


def _limited(responses: dict[str, Any]) -> dict[str, Any]:
    """The 402 and 429 answers of the sending endpoints, described."""
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return {
        **responses,
        "402": {**responses["402"], "description": _LIMITED["402"]},
        "429": {**responses["429"], "description": _LIMITED["429"], "headers": retry_after},
    }


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
        "schemas": {
            "Error": _ERROR,
            "MessageIn": _MESSAGE_IN,
            "Accepted": _ACCEPTED,
            "Balance": _BALANCE,
            "BatchResult": _BATCH_RESULT,
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/messages": {
            "post": {
                "summary": "Send one message",
                "requestBody": _json_body({"$ref": "#/components/schemas/MessageIn"}),
                "responses": _limited(
                    _responses(
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
                        402,
                        413,
                        422,
                        429,
                        503,
                    )
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
                "responses": _batch_responses(),
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
        "/v1/balance": {
            "get": {
                "summary": "The client's balance, credit limit, open holds and quota used today",
                "responses": _responses(
                    {
                        "200": {
                            "description": "the authenticated client's account",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Balance"}
                                }
                            },
                        }
                    },
                    401,
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
        **OTP_PATHS,
        **ROUTES_PATHS,
        **ROUTING_ADMIN_PATHS,
    },
}
OPENAPI = with_access(OPENAPI)  # scopes, 403 and 429 from the scope table
