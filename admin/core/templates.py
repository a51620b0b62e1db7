"""Message templates: placeholders, defaults, rendering, and the preview a marketer edits by.

Theory of operation. A template is text with placeholders ``{first_name}`` naming a contact
field, or ``{custom.key}`` naming a key of the contact's custom JSON. A placeholder may carry
its own default, ``{first_name|клиент}``; otherwise the template's defaults map applies, and
failing both the placeholder renders empty, so a rendered text never holds a brace pair that
was a placeholder. ``{{`` and ``}}`` are a literal brace. Parsing happens once, when the
template is saved or previewed; an unknown field, an unclosed brace or a stray ``}`` is an
``InvalidTemplate`` naming the placeholder, so the runner never meets a bad template.

The preview measures with ``providers.encoding`` (the gateway's own rules, never a copy):
the encoding, parts, the characters that force UCS-2, and each part's size. The worst case
fills every placeholder with its maximum length of "Щ", the costliest character of a Russian
name: it forces UCS-2, and transliterated it is the longest ("Shch"), so no real name of that
length can need more parts. Pure: no IO.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from providers.encoding import Encoding, analyse, choose_encoding, encode_text
from routing import RouteTable, quote, total

CONTACT_FIELDS = frozenset(
    {
        "phone", "first_name", "last_name", "middle_name", "city", "region", "timezone",
        "gender", "birth_date", "signup_date", "source_site", "email", "operator", "language",
        "loyalty_level", "last_purchase_at", "total_spend", "purchases", "last_activity_at",
    }
)  # fmt: skip
CUSTOM_PREFIX = "custom."
DEFAULT_MAX_LENGTH = 20  # a placeholder's length in the worst case, unless told
WORST_CHAR = "Щ"
MAX_PREVIEW_PARTS = 255  # what a concatenated SMS can carry; the gateway's limit is lower

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[A-Za-z0-9_\-]+)?")


class InvalidTemplate(ValueError):
    """The template cannot be used; ``placeholder`` names the offending one ("" if none)."""

    def __init__(self, message: str, placeholder: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.placeholder = placeholder


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    default: str | None = None  # the inline ``|default``


Piece = str | Placeholder


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    pieces: tuple[Piece, ...]

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The field names used, in order of first use."""
        return tuple(dict.fromkeys(p.name for p in self.pieces if isinstance(p, Placeholder)))


@dataclass(frozen=True, slots=True)
class Preview:
    text: str  # what was measured: the rendered sample
    encoding: str  # "gsm7" or "ucs2"
    parts: int
    chars: int  # code points
    units: int  # septets (GSM-7, an extension character weighs two) or UTF-16 units
    chars_per_part: int  # the unit limit of each part: 160/153 or 70/67
    part_lengths: tuple[int, ...]  # units in each part
    ucs2_chars: tuple[str, ...]  # the characters that force UCS-2, in order, once each
    price: Decimal | None = None  # parts × unit price, when a unit price was given


@dataclass(frozen=True, slots=True)
class PreviewRequest:
    """What to preview: the sample values, the defaults and the per-placeholder limits."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    unit_price: Decimal | None = None
    rewrite: Callable[[str], str] | None = None  # e.g. transliteration or short links


def parse_template(text: str, known: frozenset[str] = CONTACT_FIELDS) -> Template:
    """Parse once; raises ``InvalidTemplate`` naming the bad placeholder."""
    pieces: list[Piece] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        pieces.append(text[pos : match.start()])
        pieces.append(_piece(match, known))
        pos = match.end()
    pieces.append(text[pos:])
    return Template(text, _merge(pieces))


def render(
    template: Template,
    fields: Mapping[str, Any],
    defaults: Mapping[str, str] | None = None,
    escape: Callable[[str], str] | None = None,
) -> str:
    """The text for one contact. ``escape`` transforms each value (e.g. URL quoting)."""
    defaults = defaults or {}
    out = []
    for piece in template.pieces:
        if isinstance(piece, Placeholder):
            value = _value(piece, fields, defaults)
            out.append(escape(value) if escape else value)
        else:
            out.append(piece)
    return "".join(out)


def check_defaults(template: Template, defaults: Mapping[str, Any]) -> dict[str, str]:
    """The defaults map validated against the template's own field names."""
    for name, value in defaults.items():
        if name not in template.placeholders:
            raise InvalidTemplate(f"default for {name!r}, which the text does not use", name)
        if not isinstance(value, str):
            raise InvalidTemplate(f"the default for {name!r} must be a string", name)
    return dict(defaults)


def preview(text: str, request: PreviewRequest | None = None) -> Preview:
    """Measure ``text`` rendered with the request's sample fields (empty: defaults only)."""
    request = request or PreviewRequest()
    rendered = render(parse_template(text), request.fields, request.defaults)
    return measure(_rewritten(rendered, request), request.unit_price)


def worst_case(text: str, request: PreviewRequest | None = None) -> Preview:
    """The preview with every placeholder at its longest (``max_lengths``, else the default
    length), filled with ``WORST_CHAR``; a default longer than that counts whole."""
    request = request or PreviewRequest()
    template = parse_template(text)
    longest = {
        name: WORST_CHAR * _longest(name, template, request) for name in template.placeholders
    }
    rendered = render(template, longest, {})
    return measure(_rewritten(rendered, request), request.unit_price)


def measure(text: str, unit_price: Decimal | None = None) -> Preview:
    """Encoding, parts and part sizes of a final text, by the gateway's encoding rules."""
    info = analyse(text)
    lengths = part_lengths(text)
    price = price_for(info.parts, unit_price) if unit_price is not None else None
    return Preview(
        text, str(info.encoding), info.parts, len(text), info.units, info.chars_per_part,
        lengths, ucs2_chars(text), price,
    )  # fmt: skip


def ucs2_chars(text: str) -> tuple[str, ...]:
    return tuple(ch for ch in dict.fromkeys(text) if choose_encoding(ch) is Encoding.UCS2)


def part_lengths(text: str) -> tuple[int, ...]:
    """Units in each part. GSM-7 travels one septet per octet and UCS-2 two octets per unit,
    so the encoder's payload sizes are the unit counts."""
    encoded = encode_text(text, max_parts=MAX_PREVIEW_PARTS)
    per_unit = 2 if encoded.encoding is Encoding.UCS2 else 1
    return tuple(len(payload) // per_unit for payload in encoded.payloads)


def price_for(parts: int, unit_price: Decimal) -> Decimal:
    return total(unit_price, parts)


def unit_price(
    table: RouteTable, number: str, klass: str = "bulk", sender: str | None = None
) -> Decimal | None:
    """The price per part on the dearest route that could carry a message to ``number``:
    what the gateway's billing holds, so an estimate never comes in under the bill."""
    found = quote(table, number, 1, klass, sender)
    return found.highest if found else None


def format_value(value: Any) -> str:
    """A field value as it reads in a Russian SMS: dates as 31.12.2026, no float noise."""
    if isinstance(value, dt.datetime):
        return value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(map(format_value, value))
    return str(value)


def _piece(match: re.Match[str], known: frozenset[str]) -> Piece:
    token = match.group(0)
    if token in ("{{", "}}"):
        return token[0]
    if match.group(1) is None:
        raise InvalidTemplate(f"unmatched {token!r} at {match.start()}; write {token * 2}", token)
    return _placeholder(match.group(1), known)


def _placeholder(body: str, known: frozenset[str]) -> Placeholder:
    name, bar, default = body.partition("|")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidTemplate(f"{{{body}}} is not a placeholder name", name or body)
    if not (name in known or name.startswith(CUSTOM_PREFIX)):
        raise InvalidTemplate(f"unknown placeholder {{{name}}}", name)
    return Placeholder(name, default if bar else None)


def _merge(pieces: list[Piece]) -> tuple[Piece, ...]:
    """Join adjacent literal strings (``{{`` becomes its own piece) and drop empty ones."""
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif piece != "":
            merged.append(piece)
    return tuple(merged)


def _value(piece: Placeholder, fields: Mapping[str, Any], defaults: Mapping[str, str]) -> str:
    value = _lookup(piece.name, fields)
    text = "" if value is None else format_value(value).strip()
    if text:
        return text
    if piece.default is not None:
        return piece.default
    return defaults.get(piece.name, "")


def _lookup(name: str, fields: Mapping[str, Any]) -> Any:
    if name in fields or not name.startswith(CUSTOM_PREFIX):
        return fields.get(name)
    custom = fields.get("custom")
    return custom.get(name[len(CUSTOM_PREFIX) :]) if isinstance(custom, Mapping) else None


def _longest(name: str, template: Template, request: PreviewRequest) -> int:
    """Its maximum length, or a default's weight if more: in UTF-16 units, as "Щ" weighs one
    and an emoji two (and "Щ" transliterates to four letters, more than any one character)."""
    defaults = [
        p.default or "" for p in template.pieces if isinstance(p, Placeholder) and p.name == name
    ]
    defaults.append(request.defaults.get(name, ""))
    most = request.max_lengths.get(name, DEFAULT_MAX_LENGTH)
    return max(most, *(len(d.encode("utf-16-le", "surrogatepass")) // 2 for d in defaults))


def _rewritten(text: str, request: PreviewRequest) -> str:
    return request.rewrite(text) if request.rewrite else text
