"""Answers, callbacks and polled reports read through a dialect. Pure: no IO.

An answer becomes the provider's message id or a ``ProviderError``; never anything else,
whatever the bytes (garbage is a temporary ``http_bad_answer``: the provider may have
been half-way through a deploy). A callback is verified first (constant-time compare),
then parsed into receipts and inbound messages; ``CallbackRejected`` carries the HTTP
status to answer with.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from providers.base import (
    InboundPart,
    ProviderError,
    ProviderPermanentError,
    ProviderTemporaryError,
    Receipt,
    ReceiptStatus,
)
from providers.http.paths import JsonValue, dig, scalar
from providers.http.spec import (
    CallbackSpec,
    InboundSpec,
    ReportSpec,
    ResponseSpec,
    SignatureSpec,
)

# Statuses that say "later": throttling, outages, and our own configuration or account
# (credentials, funds, URL), which no message should fail for.
TEMPORARY_STATUSES = frozenset({401, 402, 403, 404, 408, 425, 429})
BAD_ANSWER = "http_bad_answer"
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 3600.0


class CallbackRejected(Exception):
    """A callback we refuse: answer it with ``status`` (401 bad signature, 400 malformed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Callback:
    """What one callback carried; ``skipped`` counts items with no id or no status."""

    receipts: tuple[Receipt, ...] = ()
    inbound: tuple[InboundPart, ...] = ()
    skipped: int = 0


# -- submit answers --------------------------------------------------------------------------


def parse_answer(
    spec: ResponseSpec, status: int, body: bytes, retry_after: float = DEFAULT_RETRY_AFTER
) -> str:
    """The provider's message id from a submit answer; raises ``ProviderError`` otherwise."""
    doc = load_answer(spec, body)
    code = _first(spec, doc, spec.errors)
    if not 200 <= status < 300:
        raise refusal(spec, status, code, retry_after)
    if spec.status and (_first(spec, doc, (spec.status,)) or "") in spec.refused:
        raise refusal(spec, status, code or _first(spec, doc, (spec.status,)), retry_after)
    provider_id = _first(spec, doc, (spec.id,))
    if provider_id:
        return provider_id
    if code:
        raise refusal(spec, status, code, retry_after)
    raise ProviderTemporaryError(BAD_ANSWER, f"HTTP {status} without an id", retry_after)


def refusal(spec: ResponseSpec, status: int, code: str | None, retry_after: float) -> ProviderError:
    label = f"http:{code}" if code else f"http_status:{status}"
    detail = f"HTTP {status}"
    if status >= 500 or status in TEMPORARY_STATUSES or code in spec.temporary_errors:
        return ProviderTemporaryError(label, detail, retry_after)
    return ProviderPermanentError(label, detail)


def load_answer(spec: ResponseSpec, body: bytes) -> JsonValue:
    """The answer as JSON, or as text for a text dialect; None when it is neither."""
    try:
        text = body.decode()
        return json.loads(text) if spec.format == "json" else text
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def _first(spec: ResponseSpec, doc: JsonValue, where: tuple[str, ...]) -> str | None:
    for path in where:
        if spec.format == "text":
            found = re.search(path, doc) if isinstance(doc, str) else None
            value = found.group(1) if found else None
        else:
            value = scalar(doc, path)
        if value:
            return value
    return None


def retry_after_seconds(header: str | None, now: datetime) -> float:
    """``Retry-After`` as delay-seconds or an HTTP date; the default when absent or odd."""
    if not header:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(header)
    except ValueError:
        seconds = _seconds_until(header, now)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return DEFAULT_RETRY_AFTER
    return min(seconds, MAX_RETRY_AFTER)


def _seconds_until(date: str, now: datetime) -> float:
    then = _http_date(date)
    return DEFAULT_RETRY_AFTER if then is None else (then - now).total_seconds()


def _http_date(value: str) -> datetime | None:
    """An RFC 2822 / RFC 9110 date, or None."""
    try:
        return _aware(email.utils.parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


# -- callbacks -------------------------------------------------------------------------------


def verify(
    spec: SignatureSpec, secret: str, headers: Mapping[str, str], body: bytes, url: str
) -> bool:
    """True when the callback carries the right signature; ``headers`` keys in lower case."""
    if spec.scheme == "none":
        return True
    offered = headers.get(spec.header.lower(), "")
    if not secret or not offered:
        return False
    expected = signature(spec, secret, body, url)
    return hmac.compare_digest(expected.encode(), offered.encode())


def signature(spec: SignatureSpec, secret: str, body: bytes, url: str) -> str:
    """The header value a genuine callback carries (the simulator signs with this too)."""
    key = secret.encode()
    if spec.scheme == "token":
        return secret
    if spec.scheme == "hmac-sha1-url":
        signed = (url + "".join(k + v for k, v in sorted(_form_pairs(body)))).encode()
        return base64.b64encode(hmac.new(key, signed, hashlib.sha1).digest()).decode()
    digest = hmac.new(key, body, hashlib.sha256).digest()
    encoded = digest.hex() if spec.encoding == "hex" else base64.b64encode(digest).decode()
    return spec.prefix + encoded


def accept_callback(
    spec: CallbackSpec,
    secret: str,
    provider: str,
    headers: Mapping[str, str],
    body: bytes,
    url: str,
) -> Callback:
    """Verify, then parse; raises ``CallbackRejected``. ``headers`` keys in lower case."""
    try:
        genuine = verify(spec.signature, secret, headers, body, url)
    except ValueError:
        raise CallbackRejected(400, "not a form body") from None
    if not genuine:
        raise CallbackRejected(401, "bad or missing signature")
    return parse_callback(spec, provider, body)


def parse_callback(spec: CallbackSpec, provider: str, body: bytes) -> Callback:
    """Receipts and inbound messages from a callback body; refused if it holds neither.

    An item is an inbound message when it has the inbound text field, else a receipt.
    """
    receipts: list[Receipt | None] = []
    parts: list[InboundPart | None] = []
    for item in callback_items(spec, body):
        if spec.inbound is not None and scalar(item, spec.inbound.text) is not None:
            parts.append(inbound_part(spec.inbound, provider, item))
        else:
            receipts.append(report(spec.receipt, provider, item))
    found = tuple(r for r in receipts if r is not None)
    got = tuple(p for p in parts if p is not None)
    if (receipts or parts) and not (found or got):
        raise CallbackRejected(400, "no receipt or inbound message with an id and a status")
    return Callback(found, got, len(receipts) + len(parts) - len(found) - len(got))


def callback_items(spec: CallbackSpec, body: bytes) -> list[JsonValue]:
    try:
        if spec.format == "form":
            return [dict(_form_pairs(body))]
        items = dig(json.loads(body), spec.items)
    except ValueError:
        raise CallbackRejected(400, f"not a {spec.format} body") from None
    if isinstance(items, dict) and not spec.items:
        return [items]
    if not isinstance(items, list):
        raise CallbackRejected(400, f"no list of items at {spec.items or 'the top'}")
    return items


def report_items(items_path: str, body: bytes) -> list[JsonValue]:
    """The reports of a polled JSON answer; raises ``ValueError`` when there are none."""
    items = dig(json.loads(body), items_path)
    if isinstance(items, dict) and not items_path:
        return [items]
    if not isinstance(items, list):
        raise ValueError(f"no list of reports at {items_path or 'the top'}")
    return items


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))


def report(spec: ReportSpec, provider: str, item: JsonValue) -> Receipt | None:
    """One receipt, or None when the item lacks its id or its status."""
    provider_id, theirs = scalar(item, spec.id), scalar(item, spec.status)
    if not provider_id or theirs is None:
        return None
    error = scalar(item, spec.error) if spec.error else None
    return Receipt(
        provider,
        provider_id,
        ReceiptStatus(spec.statuses.get(theirs, ReceiptStatus.UNKNOWN)),
        None if error is None or error in spec.no_error else error,
        parse_time(scalar(item, spec.done_at)) if spec.done_at else None,
    )


def inbound_part(spec: InboundSpec, provider: str, item: JsonValue) -> InboundPart | None:
    source, destination = scalar(item, spec.source), scalar(item, spec.destination)
    if not source or not destination:
        return None
    received = parse_time(scalar(item, spec.received_at)) if spec.received_at else None
    text = scalar(item, spec.text) or ""
    return InboundPart(provider, source, destination, text=text, received_at=received)


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (``2019-11-09T16:00:00.000+0000``) or RFC 2822; naive times are UTC."""
    if not value:
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return _http_date(value)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
