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

Providers differ in the alphabet they want for what is not UCS-2 (``encode_text``): GSM-7
septets (data_coding 0x00); IA5/ASCII octets (0x01), for texts that are ASCII *and* GSM-7, cut
by septet weight since the SMSC converts them to GSM-7 on air; or Latin-1 octets (0x03), 8-bit
on air, so 140 per SMS. A concatenation UDH costs its octets out of the 140 an SMS holds: 6
(8-bit reference) or 7 (16-bit), hence 153/152 septets, 134/133 octets or 67/66 UCS-2 units.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType


class Encoding(enum.StrEnum):
    """How a text travels: GSM 03.38, UCS-2 (UTF-16-BE), or the octets of IA5 or Latin-1."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"
    IA5 = "ia5"
    LATIN1 = "latin1"


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
_SEPTET_TABLE = MappingProxyType({ord(ch): code.decode("latin-1") for ch, code in _SEPTETS.items()})
_DECODE_EXTENSION = MappingProxyType({code: ch for ch, code in _EXTENSION.items()} | {_ESC: " "})

_SMS_OCTETS = 140  # the user data of one SMS, UDH included
_MAX_CONCAT_PARTS = 255  # the UDH carries the total in one octet

DC_GSM7 = 0x00
DC_IA5 = 0x01
DC_LATIN1 = 0x03
DC_UCS2 = 0x08
ESM_UDHI = 0x40
UDH_CONCAT_8 = 6  # octets of a UDH holding only the concatenation IE, 8-bit reference
UDH_CONCAT_16 = 7  # the same with a 16-bit reference
_IE_CONCAT_8 = 0x00
_IE_CONCAT_16 = 0x08
_DATA_CODING = MappingProxyType(
    {Encoding.GSM7: DC_GSM7, Encoding.IA5: DC_IA5, Encoding.LATIN1: DC_LATIN1}
)

# Inbound data_coding values read as a plain codec (SMPP 3.4 §5.2.19); 0/1 and the
# 0xF0 group are GSM-7; anything unknown is read as Latin-1, which never fails.
_CODECS = MappingProxyType({3: "latin-1", 6: "iso8859-5", 7: "iso8859-8"})


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


@dataclass(frozen=True, slots=True)
class TextParts:
    """A text cut and encoded for one provider: each part's octets, without any UDH."""

    encoding: Encoding
    data_coding: int
    payloads: tuple[bytes, ...]


class TooManyParts(ValueError):
    """The text needs more parts than the caller allows."""

    def __init__(self, parts: int, max_parts: int) -> None:
        super().__init__(f"text needs {parts} parts, at most {max_parts} allowed")
        self.parts = parts
        self.max_parts = max_parts


def choose_encoding(text: str) -> Encoding:
    return Encoding.GSM7 if _GSM_CHARS.issuperset(text) else Encoding.UCS2


def choose_alphabet(text: str, gsm_data_coding: int = DC_GSM7) -> Encoding:
    """The encoding a provider that takes ``gsm_data_coding`` (0x00, 0x01 or 0x03) gets."""
    if gsm_data_coding == DC_LATIN1:
        return Encoding.LATIN1 if _is_latin1(text) else Encoding.UCS2
    encoding = choose_encoding(text)
    if gsm_data_coding == DC_IA5 and encoding is Encoding.GSM7:
        return Encoding.IA5 if text.isascii() else Encoding.UCS2
    return encoding


def analyse(text: str) -> SegmentInfo:
    encoding = choose_encoding(text)
    units = _units(text, encoding)
    single, limit = _limits(encoding, UDH_CONCAT_8)
    if units <= single:
        return SegmentInfo(encoding, units, 1, single)
    parts = -(-units // limit) if units == len(text) else len(_cut(text, encoding, limit))
    return SegmentInfo(encoding, units, parts, limit)


def split(text: str, max_parts: int = 10) -> tuple[str, ...]:
    """The text of each part, in order; raises ``TooManyParts`` beyond ``max_parts``."""
    return _split(text, choose_encoding(text), UDH_CONCAT_8, max_parts)


def encode_text(
    text: str,
    gsm_data_coding: int = DC_GSM7,
    ucs2_data_coding: int = DC_UCS2,
    udh_octets: int = UDH_CONCAT_8,
    max_parts: int = 10,
) -> TextParts:
    """Cut ``text`` into parts that leave ``udh_octets`` for a concatenation UDH, and encode
    each; a text that fits one SMS whole is one part. Raises ``TooManyParts``."""
    encoding = choose_alphabet(text, gsm_data_coding)
    texts = _split(text, encoding, udh_octets, max_parts)
    data_coding = _DATA_CODING.get(encoding, ucs2_data_coding)
    return TextParts(encoding, data_coding, tuple(_payload(t, encoding) for t in texts))


def encode_parts(text: str, ref: int, max_parts: int = 10) -> tuple[EncodedPart, ...]:
    """Every part ready for submit_sm; more than one part carries the concatenation UDH."""
    encoded = encode_text(text, max_parts=max_parts)
    payloads, data_coding = encoded.payloads, encoded.data_coding
    if len(payloads) == 1:
        return (EncodedPart(data_coding, 0x00, payloads[0]),)
    total = len(payloads)
    return tuple(
        EncodedPart(data_coding, ESM_UDHI, concat_udh(ref, total, seq) + payload)
        for seq, payload in enumerate(payloads, start=1)
    )


def concat_udh(ref: int, total: int, seq: int, reference_bits: int = 8) -> bytes:
    """The UDH of one part: only the concatenation IE, ``ref`` cut to its 8 or 16 bits."""
    if reference_bits == 16:
        return bytes([0x06, _IE_CONCAT_16, 0x04, (ref >> 8) & 0xFF, ref & 0xFF, total, seq])
    return bytes([0x05, _IE_CONCAT_8, 0x03, ref & 0xFF, total, seq])


def gsm7_encode(text: str) -> bytes:
    """Unpacked septets; raises ``ValueError`` on a character GSM-7 does not have."""
    if not _GSM_CHARS.issuperset(text):
        foreign = next(ch for ch in text if ch not in _GSM_CHARS)
        raise ValueError(f"not in the GSM 03.38 alphabet: {foreign!r}")
    return text.translate(_SEPTET_TABLE).encode("latin-1")


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
    if data_coding & 0xEC == DC_UCS2:  # UCS-2, also with a message class (0x18: flash)
        return data.decode("utf-16-be", "replace")
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


def _split(text: str, encoding: Encoding, udh_octets: int, max_parts: int) -> tuple[str, ...]:
    most = _effective_max(max_parts)
    single, limit = _limits(encoding, udh_octets)
    units = _units(text, encoding)
    if units <= single:
        parts: tuple[str, ...] = (text,)
    elif units == len(text):  # every code point weighs one unit: plain slices
        parts = tuple(text[i : i + limit] for i in range(0, len(text), limit))
    else:
        parts = _cut(text, encoding, limit)
    if len(parts) > most:
        raise TooManyParts(len(parts), most)
    return parts


def _limits(encoding: Encoding, udh_octets: int) -> tuple[int, int]:
    """Units in one whole SMS, and in one part that also carries ``udh_octets`` of UDH."""
    found = _LIMITS.get((encoding, udh_octets))
    if found is None:  # a memo: analyse runs per accepted message, on a few pairs
        found = _LIMITS[encoding, udh_octets] = _limits_of(encoding, udh_octets)
    return found


_LIMITS: dict[tuple[Encoding, int], tuple[int, int]] = {}


def _limits_of(encoding: Encoding, udh_octets: int) -> tuple[int, int]:
    if encoding in (Encoding.GSM7, Encoding.IA5):
        # the septets start at the first septet boundary after the UDH (fill bits)
        return 160, 160 - -(-8 * udh_octets // 7)
    size = 2 if encoding is Encoding.UCS2 else 1
    return _SMS_OCTETS // size, (_SMS_OCTETS - udh_octets) // size


def _septet_weight(ch: str) -> int:
    return len(_SEPTETS[ch])


def _utf16_weight(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _octet_weight(ch: str) -> int:
    return 1


_WEIGHTS: MappingProxyType[Encoding, Callable[[str], int]] = MappingProxyType(
    {
        Encoding.GSM7: _septet_weight,
        Encoding.IA5: _septet_weight,  # the SMSC sends it as GSM-7: "{" still costs two
        Encoding.LATIN1: _octet_weight,
        Encoding.UCS2: _utf16_weight,
    }
)


def _is_latin1(text: str) -> bool:
    return not text or max(text) <= "\xff"


def _units(text: str, encoding: Encoding) -> int:
    """What ``sum(map(weight, text))`` gives, several times faster (this is the hot path)."""
    if encoding is Encoding.UCS2:
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    if encoding is Encoding.LATIN1:
        return len(text)
    return len(text) + sum(map(text.count, _EXTENSION))  # an escape pair weighs two


def _cut(text: str, encoding: Encoding, limit: int) -> tuple[str, ...]:
    """Greedy packing: each part takes code points while they fit in ``limit`` units."""
    weight = _WEIGHTS[encoding]
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
    if encoding is not Encoding.UCS2:
        return part.encode("latin-1")  # IA5 texts are ASCII, a subset
    # Lone surrogates (JSON allows "\ud800") pass unit for unit, so part sizes still hold;
    # the HTTP edge is the place to refuse them.
    return part.encode("utf-16-be", "surrogatepass")


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
