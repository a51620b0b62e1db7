"""Choosing an SMS encoding, counting parts, splitting and encoding them; decoding inbound.

Theory of operation. A text goes as GSM 03.38 7-bit when every character is in the default
alphabet or its basic extension table (an extension character costs two septets: ESC + code),
and as UCS-2 otherwise; for Russian traffic UCS-2 is the everyday case. One SMS holds 160
septets or 70 UTF-16 units; a longer text is cut into parts of 153 septets or 67 units,
because each part then carries a 6-octet UDH (IE 0x00: 8-bit reference, total, sequence).

Cutting walks the text one code point at a time and weighs each one (1 or 2). An escape pair
or a surrogate pair is a single code point here, so a part can never end half-way through
one; greedy packing of a sequence also gives the fewest parts, which is why ``analyse`` and
``split`` always agree.

GSM-7 travels *unpacked* (one septet per octet), which is what SMPP carries with
``data_coding`` 0; the SMSC packs it. Greek capitals that look Latin (Α, Β, Ε, …) are sent as
the Latin letters, so such a text stays GSM-7; decoding gives back the Latin letters.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType


class Encoding(enum.StrEnum):
    """How a text travels: the GSM 03.38 default alphabet or UCS-2 (UTF-16-BE)."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


# The default alphabet, by septet value. 0x1B is ESC: never a character of its own.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_ESC = 0x1B
_EXTENSION = MappingProxyType(
    {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
     "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}
)  # fmt: skip
_LOOKALIKES = MappingProxyType(dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)))

_SEPTETS: MappingProxyType[str, bytes] = MappingProxyType(
    {ch: bytes([code]) for code, ch in enumerate(_BASIC) if code != _ESC}
    | {ch: bytes([_ESC, code]) for ch, code in _EXTENSION.items()}
    | {greek: bytes([_BASIC.index(latin)]) for greek, latin in _LOOKALIKES.items()}
)
_GSM_CHARS = frozenset(_SEPTETS)
_DECODE_EXTENSION = MappingProxyType({code: ch for ch, code in _EXTENSION.items()} | {_ESC: " "})

_SINGLE = MappingProxyType({Encoding.GSM7: 160, Encoding.UCS2: 70})
_CONCAT = MappingProxyType({Encoding.GSM7: 153, Encoding.UCS2: 67})
_MAX_CONCAT_PARTS = 255  # the UDH carries the total in one octet

DC_GSM7 = 0x00
DC_UCS2 = 0x08
ESM_UDHI = 0x40
_IE_CONCAT_8 = 0x00
_IE_CONCAT_16 = 0x08

# Inbound data_coding values read as a plain codec (SMPP 3.4 §5.2.19); 0/1 and the
# 0xF0 group are GSM-7; anything unknown is read as Latin-1, which never fails.
_CODECS = MappingProxyType({3: "latin-1", 6: "iso8859-5", 7: "iso8859-8", 8: "utf-16-be"})


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text will travel: its encoding, its size and how many SMS it takes."""

    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int
    chars_per_part: int  # the unit limit of each part: 160/153 or 70/67


@dataclass(frozen=True, slots=True)
class EncodedPart:
    """One submit_sm's worth: the fields that depend on the encoding and the UDH."""

    data_coding: int
    esm_class: int
    short_message: bytes


@dataclass(frozen=True, slots=True)
class ConcatInfo:
    """The concatenation IE of an inbound part: which message, how many parts, which one."""

    ref: int
    total: int
    seq: int


class TooManyParts(ValueError):
    """The text needs more parts than the caller allows."""

    def __init__(self, parts: int, max_parts: int) -> None:
        super().__init__(f"text needs {parts} parts, at most {max_parts} allowed")
        self.parts = parts
        self.max_parts = max_parts


def choose_encoding(text: str) -> Encoding:
    return Encoding.GSM7 if _GSM_CHARS.issuperset(text) else Encoding.UCS2


def analyse(text: str) -> SegmentInfo:
    encoding = choose_encoding(text)
    weight = _weigher(encoding)
    units = sum(map(weight, text))
    if units <= _SINGLE[encoding]:
        return SegmentInfo(encoding, units, 1, _SINGLE[encoding])
    limit = _CONCAT[encoding]
    parts = -(-units // limit) if units == len(text) else len(_cut(text, weight, limit))
    return SegmentInfo(encoding, units, parts, limit)


def split(text: str, max_parts: int = 10) -> tuple[str, ...]:
    """The text of each part, in order; raises ``TooManyParts`` beyond ``max_parts``."""
    limit = _effective_max(max_parts)
    encoding = choose_encoding(text)
    weight = _weigher(encoding)
    if sum(map(weight, text)) <= _SINGLE[encoding]:
        parts: tuple[str, ...] = (text,)
    else:
        parts = _cut(text, weight, _CONCAT[encoding])
    if len(parts) > limit:
        raise TooManyParts(len(parts), limit)
    return parts


def encode_parts(text: str, ref: int, max_parts: int = 10) -> tuple[EncodedPart, ...]:
    """Every part ready for submit_sm; more than one part carries the concatenation UDH."""
    encoding = choose_encoding(text)
    texts = split(text, max_parts)
    data_coding = DC_GSM7 if encoding is Encoding.GSM7 else DC_UCS2
    payloads = [_payload(part, encoding) for part in texts]
    if len(payloads) == 1:
        return (EncodedPart(data_coding, 0x00, payloads[0]),)
    total = len(payloads)
    return tuple(
        EncodedPart(data_coding, ESM_UDHI, _concat_udh(ref & 0xFF, total, seq) + payload)
        for seq, payload in enumerate(payloads, start=1)
    )


def gsm7_encode(text: str) -> bytes:
    """Unpacked septets; raises ``ValueError`` on a character GSM-7 does not have."""
    try:
        return b"".join(_SEPTETS[ch] for ch in text)
    except KeyError as exc:
        raise ValueError(f"not in the GSM 03.38 alphabet: {exc.args[0]!r}") from None


def gsm7_decode(data: bytes) -> str:
    """Unpacked septets to text; never raises.

    Per 3GPP TS 23.038 an escape followed by a code the extension table lacks shows the
    basic character; ESC ESC shows a space. A trailing lone ESC and octets above 0x7F
    (not septets) become nothing and U+FFFD respectively.
    """
    out: list[str] = []
    escaped = False
    for octet in data:
        if escaped:
            out.append(_DECODE_EXTENSION.get(octet) or _basic_char(octet))
            escaped = False
        elif octet == _ESC:
            escaped = True
        else:
            out.append(_basic_char(octet))
    return "".join(out)


def decode(data: bytes, data_coding: int, has_udh: bool = False) -> str:
    """Inbound short_message to text; strips the UDH when ``has_udh``; never raises."""
    if has_udh:
        _, data = parse_udh(data)
    if _is_gsm7_coding(data_coding):
        return gsm7_decode(data)
    return data.decode(_CODECS.get(data_coding, "latin-1"), "replace")


def parse_udh(data: bytes) -> tuple[ConcatInfo | None, bytes]:
    """The concatenation IE (8- or 16-bit reference) and the payload after the UDH.

    A UDH whose length or IEs run past the data is garbage: ``(None, data)`` unchanged.
    As TS 23.040 says, a repeated IE counts by its last occurrence and a concatenation IE
    with impossible numbers is ignored.
    """
    if not data or len(data) < 1 + data[0]:
        return None, data
    header, rest = data[1 : 1 + data[0]], data[1 + data[0] :]
    concat: ConcatInfo | None = None
    pos = 0
    while pos < len(header):
        if pos + 2 > len(header) or pos + 2 + header[pos + 1] > len(header):
            return None, data
        iei, value = header[pos], header[pos + 2 : pos + 2 + header[pos + 1]]
        concat = _concat_ie(iei, value) or concat
        pos += 2 + len(value)
    return concat, rest


def _weigher(encoding: Encoding) -> Callable[[str], int]:
    return _septet_weight if encoding is Encoding.GSM7 else _utf16_weight


def _septet_weight(ch: str) -> int:
    return len(_SEPTETS[ch])


def _utf16_weight(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _cut(text: str, weight: Callable[[str], int], limit: int) -> tuple[str, ...]:
    """Greedy packing: each part takes code points while they fit in ``limit`` units."""
    parts: list[str] = []
    start = used = 0
    for i, ch in enumerate(text):
        w = weight(ch)
        if used + w > limit:
            parts.append(text[start:i])
            start, used = i, 0
        used += w
    parts.append(text[start:])
    return tuple(parts)


def _effective_max(max_parts: int) -> int:
    if max_parts < 1:
        raise ValueError(f"max_parts must be at least 1, not {max_parts}")
    return min(max_parts, _MAX_CONCAT_PARTS)


def _payload(part: str, encoding: Encoding) -> bytes:
    if encoding is Encoding.GSM7:
        return gsm7_encode(part)
    # Lone surrogates (JSON allows "\ud800") pass unit for unit, so part sizes still hold;
    # the HTTP edge is the place to refuse them.
    return part.encode("utf-16-be", "surrogatepass")


def _concat_udh(ref: int, total: int, seq: int) -> bytes:
    return bytes([0x05, _IE_CONCAT_8, 0x03, ref, total, seq])


def _concat_ie(iei: int, value: bytes) -> ConcatInfo | None:
    if iei == _IE_CONCAT_8 and len(value) == 3:
        ref, total, seq = value
    elif iei == _IE_CONCAT_16 and len(value) == 4:
        ref, total, seq = int.from_bytes(value[:2], "big"), value[2], value[3]
    else:
        return None
    return ConcatInfo(ref, total, seq) if 1 <= seq <= total else None


def _basic_char(octet: int) -> str:
    return _BASIC[octet] if octet < len(_BASIC) else "\ufffd"


def _is_gsm7_coding(data_coding: int) -> bool:
    # 0xF0..0xFF: GSM "data coding/message class" group; bit 2 clear means the 7-bit alphabet.
    return data_coding in (0x00, 0x01) or (data_coding & 0xF4) == 0xF0
