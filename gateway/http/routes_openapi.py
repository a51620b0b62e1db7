"""The OpenAPI paths of the routing, inbound, opt-out and pool endpoints.

Merged into ``gateway.http.openapi``; ``tests/e2e/test_openapi_fuzz.py`` fuzzes every path
here against the live gateway, so a status or field added to a handler must be added here.
"""

from __future__ import annotations

from typing import Any

_OBJECT = {"type": "object"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    ref = schema or {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _errors(*codes: int) -> dict[str, Any]:
    described = {
        400: "malformed JSON",
        401: "no or unknown API key",
        404: "not found",
        422: "a field is wrong (named)",
    }
    return {str(code): _answer(described[code]) for code in codes}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}
_MESSAGE = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageIn"}}},
}
_OPT_OUTS_IN = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["numbers"],
                "properties": {
                    "numbers": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 1000,
                        "items": {"type": "string"},
                    }
                },
            }
        }
    },
}

PATHS: dict[str, Any] = {
    "/v1/routes/simulate": {
        "post": {
            "summary": "The route a message would take now, its price and why; nothing is sent",
            "requestBody": _MESSAGE,
            "responses": {"200": _answer("the decision", _OBJECT), **_errors(400, 401, 422)},
        }
    },
    "/v1/rates": {
        "get": {
            "summary": "Each route's price per part for a number, and the quote",
            "parameters": [
                _query("to", {"type": "string"}, required=True),
                _query("parts", {"type": "integer", "minimum": 1, "maximum": 255}),
                _query("priority", {"type": "string", "enum": ["otp", "transactional", "bulk"]}),
            ],
            "responses": {"200": _answer("the rates", _OBJECT), **_errors(401, 422)},
        }
    },
    "/v1/providers": {
        "get": {
            "summary": "Live pool state summed over all dispatch processes",
            "responses": {"200": _answer("per provider", _OBJECT), **_errors(401)},
        }
    },
    "/v1/inbound": {
        "get": {
            "summary": "Inbound messages routed to the client, newest first",
            "parameters": [
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                _query("before", {"type": "integer", "minimum": 1}),
            ],
            "responses": {"200": _answer("a page", _OBJECT), **_errors(401, 422)},
        }
    },
    "/v1/opt-outs": {
        "get": {
            "summary": "The client's opt-out list",
            "parameters": [
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                _query("after", {"type": "string"}),
            ],
            "responses": {"200": _answer("a page", _OBJECT), **_errors(401, 422)},
        },
        "post": {
            "summary": "Put numbers on the opt-out list",
            "requestBody": _OPT_OUTS_IN,
            "responses": {"200": _answer("added", _OBJECT), **_errors(400, 401, 422)},
        },
    },
    "/v1/opt-outs/{number}": {
        "get": {
            "summary": "One number's opt-out",
            "parameters": [_NUMBER],
            "responses": {"200": _answer("opted out", _OBJECT), **_errors(401, 404, 422)},
        },
        "delete": {
            "summary": "Take a number off the opt-out list",
            "parameters": [_NUMBER],
            "responses": {
                "204": {"description": "removed"},
                "409": _answer("put there by the subscriber or another client"),
                **_errors(401, 404, 422),
            },
        },
    },
}
