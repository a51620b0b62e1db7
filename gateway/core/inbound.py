"""Inbound (mobile-originated) messages: parts, joining, keywords, forwarding rules. Pure.

Theory of operation. A provider hands over each part as it came (``InboundPart``). ``piece_of``
reads which message it belongs to — the concatenation IE of its UDH (8- or 16-bit
reference) or the SAR TLVs — and strips the UDH, leaving the raw payload. Parts of one
message may arrive on different binds, in any order, in different processes and across a
restart, so they wait in PostgreSQL keyed by ``Piece.key`` and are joined there; ``join``
then decodes the *concatenated* payloads. Decoding after joining is what keeps a UTF-16
surrogate pair (an emoji) or a GSM-7 escape that straddles two parts whole.

Keywords are compared after ``fold``: case-folded, ё → е, Latin letters that look Cyrillic
mapped to Cyrillic (so "CTOП" typed with a Latin C, T and O still means "СТОП"), and the
surrounding punctuation and spaces dropped. Opt-out and opt-in need the whole text to be
the keyword ("Стоп, а где мой заказ?" unsubscribes nobody); forwarding looks at the first
word only. Of the forwarding rules that match, the most specific wins: destination and
keyword, then keyword alone (a keyword picks a client on a shared short code), then
destination alone, then a catch-all; among equals the first one listed.
"""

from __future__ import annotations

import enum
import itertools
import unicodedata
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

from gateway.core.message import Priority
from gateway.core.numbers import InvalidNumber, to_e164
from providers.base import InboundPart
from providers.encoding import ESM_UDHI, ConcatInfo, decode, parse_udh

T = TypeVar("T")

OPTED_OUT = "opted_out"  # the error code of a bulk message refused for an opted-out number

_LOOKALIKES = MappingProxyType(dict(zip("acehkmopbtxy", "асенкморвтху", strict=True)))
_MAX_ADDRESS = 32


class OptAction(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


@dataclass(frozen=True, slots=True)
class ForwardRule:
    """Where inbound messages that match go, and on whose behalf (that client's webhook
    secret signs them, and that client sees them in ``GET /v1/inbound``)."""

    client: str  # a client's name
    url: str
    destination: str | None = None  # the number or short code the message was sent to
    keyword: str | None = None  # the first word of the text

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"forward rule url must be http(s), not {self.url!r}")
        if self.keyword is not None and not fold(self.keyword):
            raise ValueError("forward rule keyword is empty once punctuation is dropped")


DEFAULT_OPT_OUT = (
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
    "СТОП", "ОТПИСКА", "ОТПИСАТЬСЯ", "ОТПИСАТЬ", "ОТКАЗ", "НЕ ПРИСЫЛАТЬ",
)  # fmt: skip
DEFAULT_OPT_IN = ("START", "UNSTOP", "СТАРТ", "ПОДПИСКА", "ПОДПИСАТЬСЯ")


@dataclass(frozen=True)
class InboundSettings:
    """``[inbound]`` in the config file."""

    opt_out_keywords: tuple[str, ...] = DEFAULT_OPT_OUT
    opt_in_keywords: tuple[str, ...] = DEFAULT_OPT_IN
    forward: tuple[ForwardRule, ...] = ()
    part_ttl_s: float = 3600.0  # how long a part waits for its siblings (and absorbs repeats)
    batch_rows: int = 500
    queue_limit: int = 50_000  # parts not yet committed before the SMSC is told to retry
    stream_maxlen: int = 100_000

    def __post_init__(self) -> None:
        overlap = keyword_set(self.opt_out_keywords) & keyword_set(self.opt_in_keywords)
        if overlap:
            raise ValueError(f"a keyword cannot both opt out and opt in: {sorted(overlap)[0]}")
        if self.part_ttl_s <= 0 or self.batch_rows < 1 or self.queue_limit < 1:
            raise ValueError("part_ttl_s, batch_rows and queue_limit must be positive")


@dataclass(frozen=True, slots=True)
class Piece:
    """One inbound part, normalised and ready to store; a whole message has total 1."""

    provider: str
    source: str
    destination: str
    ref: int
    total: int
    seq: int
    data_coding: int
    payload: bytes
    received_at: datetime
    text: str | None = None  # an HTTP provider's already decoded whole text

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """The message this part belongs to."""
        return (self.provider, self.source, self.destination, self.ref, self.total)


@dataclass(frozen=True, slots=True)
class Joined:
    """A whole inbound message (or what arrived of it before its parts' time ran out)."""

    provider: str
    source: str
    destination: str
    text: str
    parts: int  # how many arrived
    total: int
    received_at: datetime  # when its first part arrived

    @property
    def complete(self) -> bool:
        return self.parts == self.total


@dataclass(frozen=True, slots=True)
class Rules:
    """``InboundSettings`` compiled for matching: folded keywords, normalised numbers."""

    opt_out: frozenset[str]
    opt_in: frozenset[str]
    forward: tuple[ForwardRule, ...] = field(default=())

    @classmethod
    def of(cls, settings: InboundSettings, region: str) -> Rules:
        rules = tuple(_compiled_rule(r, region) for r in settings.forward)
        return cls(
            keyword_set(settings.opt_out_keywords), keyword_set(settings.opt_in_keywords), rules
        )

    def action(self, text: str) -> OptAction | None:
        folded = fold(text)
        if folded in self.opt_out:
            return OptAction.OPT_OUT
        if folded in self.opt_in:
            return OptAction.OPT_IN
        return None

    def route(self, destination: str, text: str) -> ForwardRule | None:
        word = first_word(text)
        matching = [r for r in self.forward if _matches(r, destination, word)]
        return max(matching, key=_specificity, default=None)  # max keeps the first of equals


@dataclass(frozen=True, slots=True)
class Decided:
    """A joined message with what the gateway does about it."""

    message: Joined
    action: OptAction | None
    rule: ForwardRule | None


# -- parts -------------------------------------------------------------------------------


def piece_of(part: InboundPart, region: str, now: datetime) -> Piece:
    """Which message a provider's part belongs to, with its payload freed of the UDH."""
    concat, payload = _concat(part)
    received = part.received_at or now
    source, destination = address(part.source, region), address(part.destination, region)
    if part.text is not None or concat is None or concat.total == 1:
        return Piece(
            part.provider, source, destination, 0, 1, 1, part.data_coding, payload, received,
            part.text,
        )  # fmt: skip
    return Piece(
        part.provider, source, destination, concat.ref, concat.total, concat.seq,
        part.data_coding, payload, received,
    )  # fmt: skip


def _concat(part: InboundPart) -> tuple[ConcatInfo | None, bytes]:
    if part.sar is not None:
        ref, total, seq = part.sar
        valid = 1 <= seq <= total <= 255 and 0 <= ref <= 0xFFFF
        return (ConcatInfo(ref, total, seq) if valid else None), part.short_message
    if part.esm_class & ESM_UDHI:
        return parse_udh(part.short_message)
    return None, part.short_message


def address(raw: str, region: str) -> str:
    """A number in E.164 where it is one (national, international or with +), else as sent:
    short codes and alphanumeric senders stay what they are."""
    text = raw.strip()[:_MAX_ADDRESS]
    digits = text.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return text
    for candidate in (text, "+" + digits):
        try:
            return to_e164(candidate, region)
        except InvalidNumber:
            continue
    return text


def is_number(address: str) -> bool:
    return address.startswith("+") and address[1:].isdigit()


def join(pieces: Sequence[Piece]) -> Joined:
    """The message made of ``pieces`` (one message's, any order, repeats ignored)."""
    ordered = sorted({p.seq: p for p in pieces}.values(), key=lambda p: p.seq)
    first = ordered[0]
    return Joined(
        first.provider,
        first.source,
        first.destination,
        _text(ordered),
        len(ordered),
        first.total,
        min(p.received_at for p in ordered),
    )


def _text(ordered: Sequence[Piece]) -> str:
    if ordered[0].text is not None:
        return "".join(p.text or "" for p in ordered)
    runs = itertools.groupby(ordered, key=lambda p: p.data_coding)
    return "".join(decode_payload(b"".join(p.payload for p in run), dc) for dc, run in runs)


def decode_payload(data: bytes, data_coding: int) -> str:
    """SMPP ``short_message`` bytes (without UDH) to text; never raises.

    0 GSM-7 (unpacked septets), 1 IA5/ASCII, 3 Latin-1, 8 UCS-2 (read as UTF-16-BE so that
    surrogate pairs come out as one character), the rest as ``providers.encoding`` reads it.
    The text is storable: PostgreSQL takes neither NUL nor a lone surrogate, and one garbled
    part must not fail the batch that stores it (the SMSC would redeliver it forever).
    """
    text = data.decode("ascii", "replace") if data_coding == 1 else decode(data, data_coding)
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


# -- keywords and rules ------------------------------------------------------------------


def fold(text: str) -> str:
    """The form keywords are compared in (see the module docstring)."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    folded = "".join(_LOOKALIKES.get(ch, ch) for ch in folded.replace("ё", "е"))
    return " ".join(_strip_marks(folded).split())


def _strip_marks(word: str) -> str:
    start, end = 0, len(word)
    while start < end and not word[start].isalnum():
        start += 1
    while end > start and not word[end - 1].isalnum():
        end -= 1
    return word[start:end]


def first_word(text: str) -> str:
    words = fold(text).split(" ", 1)
    return _strip_marks(words[0])


def keyword_set(keywords: Iterable[str]) -> frozenset[str]:
    return frozenset(f for f in map(fold, keywords) if f)


def _compiled_rule(rule: ForwardRule, region: str) -> ForwardRule:
    return ForwardRule(
        rule.client,
        rule.url,
        address(rule.destination, region) if rule.destination else None,
        fold(rule.keyword) if rule.keyword else None,
    )


def _matches(rule: ForwardRule, destination: str, word: str) -> bool:
    return rule.destination in (None, destination) and rule.keyword in (None, word)


def _specificity(rule: ForwardRule) -> int:
    return 2 * (rule.keyword is not None) + (rule.destination is not None)


def decide(messages: Iterable[Joined], rules: Rules) -> list[Decided]:
    """Opt-out and opt-in only from numbers: a short code or a sender name has no list."""
    return [
        Decided(
            m,
            rules.action(m.text) if is_number(m.source) else None,
            rules.route(m.destination, m.text),
        )
        for m in messages
    ]


def opt_changes(items: Iterable[T], decided: Callable[[T], Decided]) -> list[T]:
    """The last opt-out or opt-in of each number in a batch: the one that stands."""
    last: dict[str, T] = {}
    for item in items:
        d = decided(item)
        if d.action is not None:
            last.pop(d.message.source, None)  # re-insert: keep the batch's order
            last[d.message.source] = item
    return list(last.values())


# -- enforcement ---------------------------------------------------------------------------


def bulk_refusal(priority: Priority, destination: str, opted_out: Set[str]) -> str | None:
    """The error code that ends a message ``rejected`` before sending, or None to send it:
    only ``bulk`` messages respect the opt-out list (a one-time code or an order update is
    something the subscriber asked for)."""
    if priority is Priority.BULK and destination in opted_out:
        return OPTED_OUT
    return None


def forward_payload(message_id: int, decided: Decided, now: datetime) -> dict[str, object]:
    """The JSON body POSTed to a forwarding rule's URL (and published on the stream)."""
    m = decided.message
    return {
        "type": "message.inbound",
        "timestamp": now.isoformat(),
        "data": {
            "id": str(message_id),
            "from": m.source,
            "to": m.destination,
            "text": m.text,
            "parts": m.parts,
            "total": m.total,
            "complete": m.complete,
            "provider": m.provider,
            "action": decided.action.value if decided.action else None,
            "received_at": m.received_at.isoformat(),
        },
    }
