"""Conversions the company's systems report (``POST /v1/conversions``): parsing. Pure.

A conversion names its contact by ``phone`` (any form the gateway understands; E.164
after parsing) or ``contact_id``, the ``event`` (purchase, signup…), an optional
``value`` with its ``currency`` and the moment ``at`` (now when absent), and the sender's
``external_id``: the same id posted again is the same conversion (idempotent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.core.numbers import InvalidNumber, to_e164

MAX_BATCH = 1000
MAX_VALUE = Decimal("1e12")
FUTURE_SLACK = timedelta(minutes=5)  # clocks of the sending systems drift
_EVENT = re.compile(r"[a-z0-9_.:-]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_EXTERNAL_ID = re.compile(r"[\x21-\x7e]{1,128}")


class InvalidConversion(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True, slots=True)
class Conversion:
    external_id: str
    event: str
    at: datetime
    phone: str | None = None
    contact_id: int | None = None
    value: Decimal | None = None
    currency: str | None = None


def parse_conversion(data: Any, now: datetime, region: str = "RU") -> Conversion:
    """One conversion from a JSON object; raises InvalidConversion naming the field."""
    if not isinstance(data, Mapping):
        raise InvalidConversion("an object", "")
    phone, contact_id = _who(data, region)
    value = _value(data.get("value"))
    return Conversion(
        external_id=_text(data.get("external_id"), _EXTERNAL_ID, "external_id"),
        event=_text(data.get("event"), _EVENT, "event"),
        at=_at(data.get("at"), now),
        phone=phone,
        contact_id=contact_id,
        value=value,
        currency=_currency(data.get("currency"), value),
    )


def _who(data: Mapping[str, Any], region: str) -> tuple[str | None, int | None]:
    phone, contact_id = data.get("phone"), data.get("contact_id")
    if (phone is None) == (contact_id is None):
        raise InvalidConversion("exactly one of phone and contact_id", "phone")
    if contact_id is not None:
        if type(contact_id) is not int or not 0 < contact_id < 2**63:
            raise InvalidConversion("a positive integer", "contact_id")
        return None, contact_id
    if not isinstance(phone, str):
        raise InvalidConversion("a phone number as a string", "phone")
    try:
        return to_e164(phone, region), None
    except InvalidNumber:
        raise InvalidConversion("not a valid phone number", "phone") from None


def _text(value: Any, pattern: re.Pattern[str], field: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidConversion(f"a string matching {pattern.pattern}", field)
    return value


def _value(raw: Any) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InvalidConversion("a number", "value")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidConversion("a number", "value") from None
    if not value.is_finite() or not 0 <= value < MAX_VALUE:
        raise InvalidConversion(f"a number from 0 to {MAX_VALUE}", "value")
    return value.quantize(Decimal("0.0001"))


def _currency(raw: Any, value: Decimal | None) -> str | None:
    if raw is None:
        return "RUB" if value is not None else None
    return _text(raw, _CURRENCY, "currency")


def _at(raw: Any, now: datetime) -> datetime:
    if raw is None:
        return now
    try:
        at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise InvalidConversion("an ISO 8601 time with its offset", "at")
    if at > now + FUTURE_SLACK:
        raise InvalidConversion("not in the future", "at")
    return at.astimezone(UTC)
