"""The gateway's errors. Each maps to one HTTP status at the edge::

GatewayError
├── ValidationError        400/422  a field of the request is wrong (names the field)
├── AuthError              401      no or unknown API key
├── NotFound               404
├── Conflict               409
├── Overloaded             503      the pipeline is full; carries retry_after
└── RoutingError           422      no route takes this destination
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    code: str = "invalid"

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class ValidationError(GatewayError):
    status = 422
    code = "invalid_field"

    @classmethod
    def of(cls, error: FieldError) -> ValidationError:
        return cls(error.message, error.field)


class MalformedBody(GatewayError):
    status = 400
    code = "malformed_body"


class AuthError(GatewayError):
    status = 401
    code = "unauthorized"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class Overloaded(GatewayError):
    status = 503
    code = "overloaded"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RoutingError(GatewayError):
    status = 422
    code = "no_route"
