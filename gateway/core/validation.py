"""Untrusted JSON → ``NewMessage``, once, at the edge. Every error names its field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.core.access import sender_allowed
from gateway.core.errors import FieldError
from gateway.core.message import NewMessage, Priority
from gateway.core.numbers import InvalidNumber, to_e164
from gateway.core.ssrf import Networks, url_refusal
from providers.encoding import analyse

FIELDS = frozenset(
    {"to", "text", "from", "priority", "client_ref", "send_at", "validity", "callback_url"}
)
_ALNUM_SENDER = re.compile(r"^[A-Za-z0-9 ._&\-]{1,11}$")
_NUMERIC_SENDER = re.compile(r"^\+?[0-9]{3,15}$")
MAX_TEXT = 1530 * 2  # generous: the part limit is the real bound


@dataclass(frozen=True, slots=True)
class Context:
    """What validation needs to know about the caller and the gateway."""

    client_id: int
    now: datetime
    default_region: str = "RU"
    default_sender: str | None = None
    callback_url: str | None = None
    max_parts: int = 10
    max_validity: timedelta = timedelta(days=3)
    max_schedule: timedelta = timedelta(days=60)
    allowed_senders: tuple[str, ...] | None = None  # None: any sender id
    callback_networks: Networks = ()  # private networks callbacks may reach (SSRF guard)


class Invalid(Exception):
    def __init__(self, error: FieldError) -> None:
        super().__init__(f"{error.field}: {error.message}")
        self.error = error


def _fail(field: str, message: str, code: str = "invalid") -> Invalid:
    return Invalid(FieldError(field, message, code))


def parse_message(data: Any, ctx: Context, prefix: str = "") -> NewMessage:
    """Validate one message object; raises ``Invalid`` naming the first bad field, after
    ``prefix`` (e.g. ``messages[3].``: joined only on failure, a batch is mostly good)."""
    if not isinstance(data, Mapping):
        raise _fail(prefix.rstrip(".") or "body", "must be a JSON object")
    try:
        return _message(data, ctx)
    except Invalid as exc:
        if not prefix:
            raise
        error = exc.error
        raise Invalid(FieldError(prefix + error.field, error.message, error.code)) from None


def _message(data: Mapping[str, Any], ctx: Context) -> NewMessage:
    if not FIELDS.issuperset(data):
        unknown = sorted(set(data) - FIELDS)
        raise _fail(unknown[0] or '""', "unknown field", "unknown_field")
    text = _text(data.get("text"), "text")
    info = analyse(text)
    if info.parts > ctx.max_parts:
        raise _fail("text", f"needs {info.parts} parts, the limit is {ctx.max_parts}")
    send_at = _time(data.get("send_at"), "send_at", ctx)
    return NewMessage(
        client_id=ctx.client_id,
        destination=_destination(data.get("to"), "to", ctx.default_region),
        sender=_sender(data.get("from", ctx.default_sender), "from", ctx),
        text=text,
        priority=_priority(data.get("priority", "transactional"), "priority"),
        encoding=info.encoding.value,
        parts=info.parts,
        client_ref=_client_ref(data.get("client_ref"), "client_ref"),
        send_at=send_at,
        expires_at=_expiry(data.get("validity"), "validity", send_at or ctx.now, ctx),
        callback_url=_callback(data, "callback_url", ctx),
    )


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, "required, a string", "required" if value is None else "invalid")
    if not value:
        raise _fail(field, "must not be empty")
    if len(value) > MAX_TEXT:
        raise _fail(field, f"longer than {MAX_TEXT} characters")
    return _clean(value, field)


def _clean(value: str, field: str) -> str:
    """Refuse what PostgreSQL cannot store and no phone can show: NUL, lone surrogates."""
    if "\x00" in value:
        raise _fail(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(field, "contains an unpaired UTF-16 surrogate") from None
    return value


def _destination(value: Any, field: str, region: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, "required, a phone number string", "required")
    try:
        return to_e164(value, region)
    except InvalidNumber as exc:
        raise _fail(field, f"not a valid phone number: {exc}") from None


SENDER_RULE = "an alphanumeric sender of up to 11 characters or up to 15 digits"


def valid_sender_id(value: str) -> bool:
    return bool(_ALNUM_SENDER.match(value) or _NUMERIC_SENDER.match(value))


def _sender(value: Any, field: str, ctx: Context) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(field, "required (or set a default sender for the client)", "required")
    if not valid_sender_id(value):
        raise _fail(field, SENDER_RULE)
    if not sender_allowed(value, ctx.allowed_senders, ctx.default_sender):
        raise _fail(field, "not one of this client's sender ids", "sender_not_allowed")
    return value


def _priority(value: Any, field: str) -> Priority:
    found = _PRIORITIES.get(value.upper()) if isinstance(value, str) else None
    if found is None:
        raise _fail(field, "one of otp, transactional, bulk")
    return found


_PRIORITIES: dict[str, Priority] = dict(Priority.__members__)


def _client_ref(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise _fail(field, "a string of 1 to 128 characters")
    return _clean(value, field)


def _time(value: Any, field: str, ctx: Context) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise _fail(field, "an ISO 8601 time with a time zone, e.g. 2026-12-01T09:00:00+03:00")
    if at - ctx.now > ctx.max_schedule:
        raise _fail(field, f"more than {ctx.max_schedule.days} days ahead")
    return at if at > ctx.now else None


def _expiry(value: Any, field: str, start: datetime, ctx: Context) -> datetime | None:
    if value is None:
        return start + ctx.max_validity
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, "seconds, an integer")
    if not 30 <= value <= ctx.max_validity.total_seconds():
        raise _fail(field, f"between 30 and {int(ctx.max_validity.total_seconds())} seconds")
    return start + timedelta(seconds=value)


def _callback(data: Mapping[str, Any], field: str, ctx: Context) -> str | None:
    """The message's own URL, checked against SSRF; else the client's (checked when it
    was set, and again at send time)."""
    if "callback_url" not in data:
        return ctx.callback_url
    value = data["callback_url"]
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise _fail(field, "an http(s) URL")
    _clean(value, field)
    refusal = url_refusal(value, ctx.callback_networks)
    if refusal is not None:
        raise _fail(field, f"an http(s) URL to a public address: {refusal}")
    return value
