"""The gateway's errors. Each maps to one HTTP status at the edge::

GatewayError
├── ValidationError        400/422  a field of the request is wrong (names the field)
├── AuthError              401      no or unknown API key
├── Forbidden              403      the key may not do this
│   └── ScopeMissing                the key lacks the route's scope (``send``, ``read``, ``admin``)
├── NotFound               404
├── Conflict               409
├── InsufficientFunds      402      balance + credit limit do not cover the request's holds
├── LimitExceeded          429      a per-client limit; carries retry_after and the limit
│   ├── RateLimited                 messages per second (``tps``)
│   ├── QuotaExceeded               messages per UTC day (``daily_quota``)
│   ├── RequestsLimited             API requests per second per key or client IP
│   └── OtpLimited                  an OTP pumping counter (destination, range, IP, country)
├── CallbackRefused        400/401  a provider's callback: malformed, or its signature is wrong
├── PayloadTooLarge        413      the body is over ``http.max_body_bytes`` (refused unread)
├── RequestTimeout         408      the body did not arrive within ``http.body_timeout_s``
├── Overloaded             503      the pipeline is full; carries retry_after
├── RoutingError           422      no route takes this destination
└── OtpRefused             422/410/423  an OTP check: wrong code (tries left), used or
                                    expired, locked (``gateway/core/otp.py``)

Errors with a ``retry_after`` leave with a ``Retry-After`` header.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal


class GatewayError(Exception):
    status = 400
    code = "bad_request"
    retry_after: float | None = None  # seconds; set: the answer carries Retry-After

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body | self.details()}

    def details(self) -> dict[str, object]:
        """More members of the error object (a limit, the amounts at stake)."""
        return {}


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


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class ScopeMissing(Forbidden):
    code = "scope_missing"

    def __init__(self, scope: str) -> None:
        super().__init__(f"this API key lacks the {scope!r} scope this call needs", "api_key")
        self.scope = scope

    def details(self) -> dict[str, object]:
        return {"scope": self.scope}


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class InsufficientFunds(GatewayError):
    status = 402
    code = "insufficient_funds"

    def __init__(self, needed: Decimal, available: Decimal) -> None:
        super().__init__(
            f"the request holds {needed} but {available} is available "
            "(balance + credit limit); top up or send fewer messages",
            "balance",
        )
        self.needed = needed
        self.available = available

    def details(self) -> dict[str, object]:
        return {"needed": str(self.needed), "available": str(self.available)}


class LimitExceeded(GatewayError):
    """A per-client limit; the body names it and its value."""

    status = 429
    limit_name = ""
    retry_after: float

    def __init__(self, message: str, limit: int, retry_after: float) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after

    def details(self) -> dict[str, object]:
        return {"limit": self.limit_name, "value": self.limit, "retry_after": whole_seconds(self)}


class RateLimited(LimitExceeded):
    code = "rate_limited"
    limit_name = "tps"

    def __init__(self, limit: int, retry_after: float) -> None:
        super().__init__(f"more than {limit} messages per second", limit, retry_after)


class QuotaExceeded(LimitExceeded):
    code = "daily_quota_exceeded"
    limit_name = "daily_quota"

    def __init__(self, limit: int, retry_after: float) -> None:
        message = f"the daily quota of {limit} messages would be exceeded; it resets at 00:00 UTC"
        super().__init__(message, limit, retry_after)


class RequestsLimited(LimitExceeded):
    """API requests per second, per API key (``api_key_rps``) or client IP (``ip_rps``)."""

    code = "too_many_requests"

    def __init__(self, per: str, rate: float, retry_after: float) -> None:
        message = f"more than {rate:g} requests per second from this {per.replace('_', ' ')}"
        super().__init__(message, math.ceil(rate), retry_after)
        self.limit_name = f"{per}_rps"
        self.rate = rate

    def details(self) -> dict[str, object]:
        return super().details() | {"value": self.rate}


class Overloaded(GatewayError):
    status = 503
    code = "overloaded"
    retry_after: float

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CallbackRefused(GatewayError):
    code = "callback_refused"

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason, "body" if status == 400 else "signature")
        self.status = status


class RoutingError(GatewayError):
    status = 422
    code = "no_route"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"


class RequestTimeout(GatewayError):
    status = 408
    code = "request_timeout"


class OtpLimited(LimitExceeded):
    """An OTP send over one of the pumping counters; ``limit_name`` says which."""

    code = "otp_limited"

    def __init__(self, limit_name: str, limit: int, window_s: int, retry_after: float) -> None:
        per = f"{window_s} s" if window_s else "UTC day"
        super().__init__(f"more than {limit} codes per {per} ({limit_name})", limit, retry_after)
        self.field = "ip" if limit_name == "otp_ip" else "to"  # what the counter counts
        self.limit_name = limit_name
        self.window_s = window_s

    def details(self) -> dict[str, object]:
        return super().details() | {"window_s": self.window_s}


class OtpRefused(GatewayError):
    """A code check that did not verify; ``code`` is the outcome."""

    def __init__(self, status: int, code: str, message: str, tries_left: int) -> None:
        super().__init__(message, "code")
        self.status = status
        self.code = code
        self.tries_left = tries_left

    def details(self) -> dict[str, object]:
        return {"tries_left": self.tries_left}


def whole_seconds(error: GatewayError) -> int:
    """Retry-After in whole seconds, rounded up: a client retrying then is not early."""
    return max(1, math.ceil(error.retry_after or 0))
