"""The OpenAPI document's access part, derived from the scope table so they never differ:
each operation's bearer scope, its 403 (scope missing) and its 429 (request limits)."""

from __future__ import annotations

import copy
from typing import Any

from gateway.core.access import required_scope

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
_FORBIDDEN = (
    "scope_missing: the API key lacks the scope this call needs (the error's `scope`); "
    "keys are made with scopes by `smsgw key-add CLIENT --scope send|read|admin|operator`"
)
_TOO_MANY = (
    "too_many_requests: over the API's requests per second per key (`api_key_rps`) or per "
    "client IP (`ip_rps`), counted before the key is checked; Retry-After says when to retry"
)
_METHODS = ("get", "post", "put", "patch", "delete")


def with_access(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with the scope, 403 and 429 of every operation."""
    result = copy.deepcopy(document)
    _error_members(result["components"]["schemas"]["Error"]["properties"]["error"])
    for path, item in result["paths"].items():
        for method in _METHODS:
            if method in item:
                _operation(item[method], required_scope(method, path))
    return result


def _operation(operation: dict[str, Any], scope: Any) -> None:
    responses = operation.setdefault("responses", {})
    if scope is not None:
        operation["security"] = [{"bearer": [scope.value]}]
        operation["x-scope"] = scope.value
        responses.setdefault("403", {"description": _FORBIDDEN, **_ERROR})
    limited = {"description": _TOO_MANY, **_ERROR, "headers": _RETRY_AFTER}
    if "429" in responses:  # the client's own limits already say 429: name both
        described = responses["429"].get("description", "")
        limited["description"] = f"{described}; or {_TOO_MANY}"
    responses["429"] = limited


def _error_members(error: dict[str, Any]) -> None:
    members = error["properties"]
    limit = members.get("limit", {})
    if "enum" in limit:
        limit["enum"] = [*limit["enum"], "api_key_rps", "ip_rps"]
    members["value"] = {"type": "number", "description": "429: that limit's value"}
    members["scope"] = {
        "type": "string",
        "enum": ["send", "read", "admin", "operator"],
        "description": "403: the scope the key lacks",
    }
