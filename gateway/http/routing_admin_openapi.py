"""The OpenAPI paths of the operators' routing endpoints (``routing_admin_handlers``) and
the delivery figures per provider. Merged into ``gateway.http.openapi``."""

from __future__ import annotations

from typing import Any

from gateway.http.routes_openapi import _answer, _errors, _query

_OBJECT = {"type": "object"}
_ROUTING = _answer(
    "the routing in force: version, source (override or file), the override's document, "
    "the effective and the file's routes, the providers disabled",
    _OBJECT,
)
_ROUTE = {
    "type": "object",
    "required": ["provider", "price_per_part"],
    "properties": {
        "provider": {"type": "string"},
        "prefixes": {"type": "array", "items": {"type": "string"}},
        "countries": {"type": "array", "items": {"type": "string"}},
        "operators": {"type": "array", "items": {"type": "string"}},
        "price_per_part": {"type": "string", "description": 'a decimal, e.g. "0.35"'},
        "classes": {"type": "array", "items": {"enum": ["otp", "transactional", "bulk"]}},
        "weight": {"type": "integer", "minimum": 1},
        "senders": {"type": "array", "items": {"type": "string"}},
        "numeric_sender": {"type": "string"},
    },
}
_BY = {"type": "string", "minLength": 1, "maxLength": 200, "description": "who changes it"}
_PUT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["document"],
                "properties": {
                    "document": {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["routes"],
                                "properties": {"routes": {"type": "array", "items": _ROUTE}},
                            },
                            {"type": "null"},
                        ],
                        "description": "the routes replacing the file's; null: the file's again",
                    },
                    "version": {"type": ["integer", "null"], "description": "the one read"},
                    "by": _BY,
                },
            }
        }
    },
}
_BY_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "properties": {"by": _BY}}}},
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def _toggle(summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [_NAME],
            "requestBody": _BY_BODY,
            "responses": {"200": _ROUTING, **_errors(400, 401, 404, 422)},
        }
    }


PATHS: dict[str, Any] = {
    "/v1/admin/routing": {
        "get": {
            "summary": "The routing in force, shared by every gateway process",
            "responses": {"200": _ROUTING, **_errors(401)},
        },
        "put": {
            "summary": "Replace the routes and prices for every process (checked first)",
            "requestBody": _PUT_BODY,
            "responses": {
                "200": _ROUTING,
                "409": _answer("the routing changed since the version read"),
                **_errors(400, 401, 422),
            },
        },
    },
    "/v1/admin/providers/{name}/disable": _toggle(
        "Route no new messages to a provider (its binds stay up for receipts)"
    ),
    "/v1/admin/providers/{name}/enable": _toggle("Route messages to a provider again"),
    "/v1/providers/delivery": {
        "get": {
            "summary": "Each provider's outcomes of the messages accepted in the window",
            "parameters": [
                _query("window_s", {"type": "integer", "minimum": 60, "maximum": 604800})
            ],
            "responses": {"200": _answer("per provider", _OBJECT), **_errors(401, 422)},
        }
    },
}
