"""Delivery receipts out of SMPP deliver_sm, and the id matching the gateway relies on.

Theory of operation. A deliver_sm is a receipt when its esm_class message type (bits 5-2)
says so; otherwise it is a mobile-originated message and not ours to read here. The
receipt's facts come from the TLVs when the SMSC sends them (receipted_message_id,
message_state, network_error_code) and from the SMPP 3.4 Appendix B text otherwise::

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
    stat:DDDDDDD err:E text:...

SMSCs bend that text every way they can (key case, "submit_date", spacing, field order,
extra fields), so the parser finds ``key:`` tokens rather than fixed columns. ``text:``
ends the parse: it echoes the start of the customer's message, and a message reading
"stat:DELIVRD" must not forge a status.

Matching: SMSCs often answer submit_sm_resp with a hex id and report the receipt with the
same number in decimal, or the reverse. The gateway stores ``canonical_id`` of each
submit_sm_resp id and looks a receipt up by every one of its ``id_candidates``.

Status dialects are data (``STAT_MAP``, ``MESSAGE_STATE_MAP``), as vumi keeps them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType

from providers.base import Receipt, ReceiptStatus

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423

STAT_MAP: Mapping[str, ReceiptStatus] = MappingProxyType(
    {
        "DELIVRD": ReceiptStatus.DELIVERED,
        "UNDELIV": ReceiptStatus.UNDELIVERABLE,
        "EXPIRED": ReceiptStatus.EXPIRED,
        "REJECTD": ReceiptStatus.REJECTED,
        "DELETED": ReceiptStatus.UNDELIVERABLE,
        "UNKNOWN": ReceiptStatus.UNKNOWN,
        "ACCEPTD": ReceiptStatus.ACCEPTED,
        "ENROUTE": ReceiptStatus.ENROUTE,
        "DELIVERED": ReceiptStatus.DELIVERED,
        "UNDELIVERABLE": ReceiptStatus.UNDELIVERABLE,
        "REJECTED": ReceiptStatus.REJECTED,
        "ACCEPTED": ReceiptStatus.ACCEPTED,
    }
)

MESSAGE_STATE_MAP: Mapping[int, ReceiptStatus] = MappingProxyType(
    {
        1: ReceiptStatus.ENROUTE,
        2: ReceiptStatus.DELIVERED,
        3: ReceiptStatus.EXPIRED,
        4: ReceiptStatus.UNDELIVERABLE,  # DELETED
        5: ReceiptStatus.UNDELIVERABLE,
        6: ReceiptStatus.ACCEPTED,
        7: ReceiptStatus.UNKNOWN,
        8: ReceiptStatus.REJECTED,
    }
)

_MESSAGE_STATES = dict(MESSAGE_STATE_MAP)  # a plain dict: read for every receipt

# esm_class bits 5-2 (SMPP 3.4 §5.2.12) that carry a receipt: SMSC delivery receipt,
# SME delivery ack, SME manual/user ack, intermediate delivery notification.
_ESM_TYPE_MASK = 0x3C
_RECEIPT_TYPES = frozenset({0x04, 0x08, 0x10, 0x20})

_MAX_NUMERIC_ID = 64  # SMPP message_id is at most 64 characters (65 with the NUL)
_JUNK = string.whitespace + "\x00"
_HEX = frozenset(string.hexdigits.lower())

_KEY = re.compile(r"(?<!\S)(submit[\s_]*date|done[\s_]*date|[a-z][a-z0-9_]*)\s*:", re.I)
_KEY_SEPARATORS = re.compile(r"[\s_]+")
_KEY_ALIASES = MappingProxyType({"submitdate": "submit_date", "donedate": "done_date"})
_FIELDS = ("id", "sub", "dlvrd", "submit_date", "done_date", "stat", "err", "text")


@dataclass(frozen=True, slots=True)
class ReceiptText:
    """The fields of the SMPP 3.4 Appendix B receipt text, as the SMSC wrote them."""

    id: str | None = None
    sub: str | None = None
    dlvrd: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    stat: str | None = None
    err: str | None = None
    text: str | None = None


_NO_TEXT = ReceiptText()


def parse_receipt_text(text: str) -> ReceiptText | None:
    """The receipt fields found in ``text``; ``None`` when it has neither an id nor a stat.

    Keys are matched in any order and case; unknown keys are skipped; the first
    occurrence of a key wins; an empty value is ``None``; ``text:`` takes the rest.
    """
    fields: dict[str, str | None] = {}
    for key, value in _key_values(text):
        if key in _FIELDS:
            fields.setdefault(key, value.strip() or None)
    if fields.get("id") is None and fields.get("stat") is None:
        return None
    return ReceiptText(**fields)


def parse_done_date(value: str | None) -> datetime | None:
    """``YYMMDDhhmm`` or ``YYMMDDhhmmss`` as a UTC datetime; ``None`` when it is neither."""
    return _done_date((value or "").strip())


@lru_cache(maxsize=256)  # receipts of one minute share their done date
def _done_date(value: str) -> datetime | None:
    if len(value) not in (10, 12) or not value.isascii() or not value.isdigit():
        return None
    yy, mo, dd, hh, mi, ss = (int(value.ljust(12, "0")[i : i + 2]) for i in range(0, 12, 2))
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=UTC)
    except ValueError:
        return None


def is_receipt(esm_class: int) -> bool:
    """True when a deliver_sm with this esm_class reports on a message we sent."""
    return (esm_class & _ESM_TYPE_MASK) in _RECEIPT_TYPES


def receipt_from_deliver_sm(
    provider: str, esm_class: int, short_message: bytes, tlvs: Mapping[int, bytes]
) -> Receipt | None:
    """The receipt a deliver_sm carries; ``None`` for an MO or a receipt without an id.

    TLVs win over the text. Never raises on garbage.
    """
    if not is_receipt(esm_class):
        return None
    fast = _from_tlvs(provider, short_message, tlvs)
    if fast is not None:
        return fast
    fields = parse_receipt_text(_decode_text(short_message)) or _NO_TEXT
    message_id = _tlv_message_id(tlvs) or _clean(fields.id or "")
    if not message_id:
        return None
    return Receipt(
        provider=provider,
        provider_message_id=message_id,
        status=_tlv_status(tlvs) or _text_status(fields.stat),
        error_code=_tlv_error(tlvs) or _text_error(fields.err),
        done_at=parse_done_date(fields.done_date),
    )


def _from_tlvs(provider: str, short_message: bytes, tlvs: Mapping[int, bytes]) -> Receipt | None:
    """The common case, without parsing the text: TLVs give the id and the state (and the
    error, if any); only the done date is read from the text, by a plain search."""
    message_id, status = _tlv_message_id(tlvs), _tlv_status(tlvs)
    if not message_id or status is None:
        return None
    error = _tlv_error(tlvs)
    if error is None and status is not ReceiptStatus.DELIVERED:
        return None  # the error code may be only in the text: take the full path
    at = short_message.find(b"done date:")
    done = short_message[at + 10 : at + 20].decode("latin-1") if at >= 0 else None
    return Receipt(provider, message_id, status, error, parse_done_date(done))


def canonical_id(provider_message_id: str) -> str:
    """The form ids are stored and compared in: trimmed, lowercase, no leading zeros."""
    cleaned = _clean(provider_message_id).lower()
    return cleaned.lstrip("0") or cleaned[:1]


def id_candidates(provider_message_id: str) -> tuple[str, ...]:
    """Every canonical form the submit_sm_resp may have given for this id, exact form first.

    A decimal id may have been sent in hex and a hex id in decimal; digits-only ids are
    both, so "6699" also yields "1a2b" (its hex) and "26265" (read as hex, in decimal).
    """
    exact = canonical_id(provider_message_id)
    if not exact:
        return ()
    candidates = [exact]
    if len(exact) <= _MAX_NUMERIC_ID:
        if exact.isascii() and exact.isdigit():
            candidates.append(format(int(exact), "x"))
        if _HEX.issuperset(exact):
            candidates.append(str(int(exact, 16)))
    return tuple(dict.fromkeys(candidates))


def _key_values(text: str) -> Iterator[tuple[str, str]]:
    """Each ``key:`` and the text up to the next key; ``text:`` runs to the end."""
    matches = list(_KEY.finditer(text))
    ends = [m.start() for m in matches[1:]] + [len(text)]
    for match, end in zip(matches, ends, strict=False):  # no matches: ends is one longer
        key = _key_name(match.group(1))
        if key == "text":
            yield key, text[match.end() :]
            return
        yield key, text[match.end() : end]


def _key_name(raw: str) -> str:
    key = _KEY_SEPARATORS.sub("", raw.lower())
    return _KEY_ALIASES.get(key, key)


def _clean(value: str) -> str:
    return value.strip(_JUNK)


def _decode_text(short_message: bytes) -> str:
    """Receipt texts are ASCII in practice; NULs go so that UTF-16 ASCII reads too."""
    try:
        text = short_message.decode("utf-8")
    except UnicodeDecodeError:
        text = short_message.decode("latin-1")
    return text.replace("\x00", "")


def _tlv_message_id(tlvs: Mapping[int, bytes]) -> str:
    raw = tlvs.get(TLV_RECEIPTED_MESSAGE_ID, b"").split(b"\x00", 1)[0]
    return _clean(raw.decode("latin-1"))


def _tlv_status(tlvs: Mapping[int, bytes]) -> ReceiptStatus | None:
    raw = tlvs.get(TLV_MESSAGE_STATE, b"")
    if len(raw) == 1:  # as the spec has it
        return _MESSAGE_STATES.get(raw[0])
    if not 1 <= len(raw) <= 4:
        return None
    return MESSAGE_STATE_MAP.get(int.from_bytes(raw, "big"))


def _text_status(stat: str | None) -> ReceiptStatus:
    return STAT_MAP.get((stat or "").strip().upper(), ReceiptStatus.UNKNOWN)


def _tlv_error(tlvs: Mapping[int, bytes]) -> str | None:
    """network_error_code: network type (1 = ANSI-136, 2 = IS-95, 3 = GSM) and a 2-octet code."""
    raw = tlvs.get(TLV_NETWORK_ERROR_CODE, b"")
    if len(raw) != 3:
        return None
    code = int.from_bytes(raw[1:], "big")
    return f"{raw[0]}:{code:04d}" if code else None


def _text_error(err: str | None) -> str | None:
    err = _clean(err or "")
    return err if err.strip("0") else None
