"""GSM 03.38 / UCS-2 choice, part counting, splitting, encoding and inbound decoding."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.encoding import (
    ConcatInfo,
    EncodedPart,
    Encoding,
    SegmentInfo,
    TooManyParts,
    analyse,
    choose_alphabet,
    choose_encoding,
    concat_udh,
    decode,
    encode_parts,
    encode_text,
    gsm7_decode,
    gsm7_encode,
    parse_udh,
    split,
)

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "^{}\\[~]|€\f"
GSM_ALPHABET = BASIC + EXTENSION
EMOJI = "😀"

gsm_texts = st.text(alphabet=GSM_ALPHABET, max_size=1200)
# Mostly GSM with some Cyrillic and non-BMP characters mixed in, so that both encodings,
# escape pairs and surrogate pairs all land on part boundaries.
_mixed_alphabet = st.sampled_from(GSM_ALPHABET + "ПриветЁё€€€" + EMOJI + "𝄞")
mixed_texts = st.one_of(
    st.text(alphabet=_mixed_alphabet, max_size=200),
    st.text(alphabet=_mixed_alphabet, min_size=140, max_size=1200),
    st.text(alphabet=st.sampled_from("я€" + EMOJI), min_size=60, max_size=400),
    # runs of double-width characters, where packing wastes a unit per part
    st.builds(
        lambda head, ch, n: head + ch * n,
        st.text(alphabet="aя", max_size=3),
        st.sampled_from(["€", EMOJI]),
        st.integers(min_value=60, max_value=700),
    ),
)


def units_of(part: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return len(gsm7_encode(part))
    return len(part.encode("utf-16-be")) // 2


def reassemble(parts: tuple[EncodedPart, ...]) -> str:
    texts = []
    for part in parts:
        has_udh = bool(part.esm_class & 0x40)
        texts.append(decode(part.short_message, part.data_coding, has_udh=has_udh))
    return "".join(texts)


def test_the_module_is_pure() -> None:
    """Only standard-library modules without I/O: encoding is called on every hot path."""
    tree = ast.parse(Path(encode_text.__code__.co_filename).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"__future__", "enum", "collections.abc", "dataclasses", "types", "typing"}
    assert imported <= allowed


# --- choosing the encoding ---------------------------------------------------------------


def test_characters_people_think_gsm7_lacks_are_native() -> None:
    text = "£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà\r\n"
    assert choose_encoding(text) is Encoding.GSM7
    assert analyse(text).units == len(text)


def test_lowercase_c_cedilla_is_not_gsm7() -> None:
    assert choose_encoding("Ç") is Encoding.GSM7
    assert choose_encoding("ç") is Encoding.UCS2


@pytest.mark.parametrize("text", ["Привет", "Ёлка", "a" * 200 + "ж", "`", "¢"])
def test_anything_outside_the_alphabet_goes_ucs2(text: str) -> None:
    assert choose_encoding(text) is Encoding.UCS2


def test_greek_capitals_that_look_latin_travel_as_latin() -> None:
    assert choose_encoding("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ") is Encoding.GSM7
    assert gsm7_decode(gsm7_encode("ΑΘΗΝΑ")) == "AΘHNA"


def test_empty_text_is_one_gsm7_part() -> None:
    assert analyse("") == SegmentInfo(Encoding.GSM7, 0, 1, 160)
    assert split("") == ("",)
    assert encode_parts("", ref=1) == (EncodedPart(0x00, 0x00, b""),)


# --- counting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, SegmentInfo(Encoding.GSM7, 160, 1, 160)),
        ("a" * 161, SegmentInfo(Encoding.GSM7, 161, 2, 153)),
        ("a" * 306, SegmentInfo(Encoding.GSM7, 306, 2, 153)),
        ("a" * 307, SegmentInfo(Encoding.GSM7, 307, 3, 153)),
        ("ж" * 70, SegmentInfo(Encoding.UCS2, 70, 1, 70)),
        ("ж" * 71, SegmentInfo(Encoding.UCS2, 71, 2, 67)),
        ("ж" * 134, SegmentInfo(Encoding.UCS2, 134, 2, 67)),
        ("ж" * 135, SegmentInfo(Encoding.UCS2, 135, 3, 67)),
        ("€", SegmentInfo(Encoding.GSM7, 2, 1, 160)),
        ("€" * 80, SegmentInfo(Encoding.GSM7, 160, 1, 160)),
        ("€" * 81, SegmentInfo(Encoding.GSM7, 162, 2, 153)),
        (EMOJI * 35, SegmentInfo(Encoding.UCS2, 70, 1, 70)),
        (EMOJI * 36, SegmentInfo(Encoding.UCS2, 72, 2, 67)),
        # whole pairs only: 76 "€" or 33 emoji per part, one unit left over each time
        ("€" * 153, SegmentInfo(Encoding.GSM7, 306, 3, 153)),
        (EMOJI * 67, SegmentInfo(Encoding.UCS2, 134, 3, 67)),
    ],
)
def test_analyse(text: str, expected: SegmentInfo) -> None:
    assert analyse(text) == expected


def test_escape_pairs_are_never_split_so_the_count_can_exceed_plain_division() -> None:
    # 77 "€" = 154 septets: 76 fit one part (152), the 77th must go whole to the next.
    text = "€" * 77 + "a" * 10
    assert analyse(text).units == 164
    assert [len(p) for p in split(text)] == [76, 11]


# --- splitting ----------------------------------------------------------------------------


def test_161_gsm_chars_split_153_then_8() -> None:
    assert [len(p) for p in split("a" * 161)] == [153, 8]


def test_71_cyrillic_chars_split_67_then_4() -> None:
    assert [len(p) for p in split("я" * 71)] == [67, 4]


def test_escape_at_the_boundary_moves_to_the_next_part() -> None:
    text = "a" * 152 + "€" + "b" * 10
    first, second = split(text)
    assert first == "a" * 152
    assert second == "€" + "b" * 10
    assert gsm7_encode(first)[-1] != 0x1B


def test_emoji_at_the_boundary_moves_to_the_next_part() -> None:
    text = "я" * 66 + EMOJI + "я" * 10
    first, second = split(text)
    assert first == "я" * 66
    assert second.startswith(EMOJI)


def test_emoji_that_fits_exactly_stays() -> None:
    text = "я" * 65 + EMOJI + "я" * 10
    assert split(text)[0] == "я" * 65 + EMOJI


def test_too_many_parts_carries_the_numbers() -> None:
    with pytest.raises(TooManyParts) as caught:
        split("a" * (153 * 10 + 1))
    assert (caught.value.parts, caught.value.max_parts) == (11, 10)
    assert isinstance(caught.value, ValueError)


def test_max_parts_is_the_callers_choice() -> None:
    assert len(split("a" * (153 * 12), max_parts=12)) == 12
    with pytest.raises(TooManyParts):
        split("a" * 161, max_parts=1)
    with pytest.raises(ValueError, match="max_parts"):
        split("a", max_parts=0)


def test_more_than_255_parts_cannot_be_numbered() -> None:
    with pytest.raises(TooManyParts) as caught:
        encode_parts("a" * (153 * 256), ref=1, max_parts=1000)
    assert caught.value.max_parts == 255


# --- encoding parts -----------------------------------------------------------------------


def test_single_gsm_part_has_no_udh() -> None:
    assert encode_parts("Hi €", ref=7) == (EncodedPart(0x00, 0x00, b"Hi\x20\x1b\x65"),)


def test_single_ucs2_part_is_utf16_be() -> None:
    (part,) = encode_parts("Привет", ref=7)
    assert part == EncodedPart(0x08, 0x00, "Привет".encode("utf-16-be"))


def test_concatenated_parts_carry_the_8bit_reference_udh() -> None:
    parts = encode_parts("ж" * 71, ref=0x1234)
    assert [p.short_message[:6] for p in parts] == [
        bytes([5, 0, 3, 0x34, 2, 1]),
        bytes([5, 0, 3, 0x34, 2, 2]),
    ]
    assert all(p.esm_class == 0x40 and p.data_coding == 0x08 for p in parts)
    assert len(parts[0].short_message) == 6 + 134


def test_gsm_concatenated_parts_hold_153_septets() -> None:
    parts = encode_parts("a" * 200, ref=1)
    assert [len(p.short_message) - 6 for p in parts] == [153, 47]
    assert all(p.data_coding == 0x00 for p in parts)


# --- GSM-7 codec --------------------------------------------------------------------------


def test_gsm7_encode_values() -> None:
    assert gsm7_encode("@£$¥") == b"\x00\x01\x02\x03"
    assert gsm7_encode("¤") == b"\x24"
    assert gsm7_encode("{}[]") == b"\x1b\x28\x1b\x29\x1b\x3c\x1b\x3e"
    assert gsm7_encode("\f") == b"\x1b\x0a"


def test_gsm7_encode_refuses_foreign_characters() -> None:
    with pytest.raises(ValueError, match="ç"):
        gsm7_encode("garçon")


def test_gsm7_decode_follows_23038_for_odd_escapes() -> None:
    assert gsm7_decode(b"\x1b\x41") == "A"  # unknown extension code: the basic character
    assert gsm7_decode(b"\x1b\x1b") == " "
    assert gsm7_decode(b"a\x1b") == "a"
    assert gsm7_decode(b"\x80\xff") == "\ufffd\ufffd"


# --- inbound decoding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "data_coding", "expected"),
    [
        (b"Hello \x1b\x65", 0, "Hello €"),
        (b"Hello", 1, "Hello"),
        (b"caf\xe9", 3, "café"),
        ("Привет".encode("utf-16-be"), 8, "Привет"),
        ("Привет".encode("iso8859-5"), 6, "Привет"),
        (b"\x04\x1f\x04", 8, "П\ufffd"),  # odd length
        (b"\xd8\x3d\x00\x41", 8, "\ufffdA"),  # lone high surrogate
        (b"\xde\x00", 8, "\ufffd"),  # lone low surrogate
        (b"Hi", 0xF1, "Hi"),  # GSM message-class group, 7-bit
        (b"caf\xe9", 0x04, "café"),  # binary: read byte for byte
    ],
)
def test_decode(data: bytes, data_coding: int, expected: str) -> None:
    assert decode(data, data_coding) == expected


def test_decode_strips_the_udh() -> None:
    data = bytes([5, 0, 3, 9, 2, 1]) + "Ёж".encode("utf-16-be")
    assert decode(data, 8, has_udh=True) == "Ёж"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes([5, 0, 3, 9, 2, 1]) + b"x", (ConcatInfo(9, 2, 1), b"x")),
        (bytes([6, 8, 4, 0x12, 0x34, 3, 3]) + b"x", (ConcatInfo(0x1234, 3, 3), b"x")),
        # another IE first (port addressing), then concatenation
        (bytes([11, 5, 4, 0, 1, 0, 2, 0, 3, 7, 4, 2]) + b"x", (ConcatInfo(7, 4, 2), b"x")),
        (bytes([3, 0x24, 1, 1]) + b"x", (None, b"x")),  # a UDH without concatenation
        (bytes([5, 0, 3, 9, 2, 3]) + b"x", (None, b"x")),  # seq > total: IE ignored
        (bytes([5, 0, 3, 9, 0, 0]) + b"x", (None, b"x")),
    ],
)
def test_parse_udh(data: bytes, expected: tuple[ConcatInfo | None, bytes]) -> None:
    assert parse_udh(data) == expected


@pytest.mark.parametrize(
    "garbage",
    [b"", bytes([5, 0, 3]), bytes([5, 0, 9, 1, 2, 1]), bytes([2, 0]), b"\xff" * 4],
)
def test_parse_udh_returns_garbage_untouched(garbage: bytes) -> None:
    assert parse_udh(garbage) == (None, garbage)


# --- properties ---------------------------------------------------------------------------


@given(mixed_texts)
def test_joining_the_parts_gives_back_the_text(text: str) -> None:
    assert "".join(split(text, max_parts=255)) == text


@given(mixed_texts)
def test_every_part_fits_its_limit(text: str) -> None:
    info = analyse(text)
    parts = split(text, max_parts=255)
    assert all(units_of(p, info.encoding) <= info.chars_per_part for p in parts)
    assert sum(units_of(p, info.encoding) for p in parts) == info.units


@given(mixed_texts)
def test_analyse_agrees_with_split(text: str) -> None:
    assert analyse(text).parts == len(split(text, max_parts=255))


@given(mixed_texts, st.integers(min_value=0, max_value=2**16))
def test_encoded_parts_decode_back_to_the_text(text: str, ref: int) -> None:
    parts = encode_parts(text, ref, max_parts=255)
    assert reassemble(parts) == text
    if len(parts) > 1:
        infos = [parse_udh(p.short_message)[0] for p in parts]
        expected = [ConcatInfo(ref & 0xFF, len(parts), i) for i in range(1, len(parts) + 1)]
        assert infos == expected
    assert all(len(p.short_message) <= 160 for p in parts)


@given(gsm_texts)
def test_gsm7_round_trip(text: str) -> None:
    assert gsm7_decode(gsm7_encode(text)) == text


@given(st.text(max_size=200))
def test_ucs2_is_chosen_iff_a_character_is_not_gsm7(text: str) -> None:
    outside = any(ch not in GSM_ALPHABET and ch not in "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ" for ch in text)
    assert (choose_encoding(text) is Encoding.UCS2) == outside


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=255), st.booleans())
def test_decode_never_raises(data: bytes, data_coding: int, has_udh: bool) -> None:
    assert isinstance(decode(data, data_coding, has_udh), str)


# --- per-provider alphabets and UDH sizes (encode_text) -----------------------------------


@pytest.mark.parametrize(
    ("text", "gsm_data_coding", "expected"),
    [
        ("Hello {€}", 0x00, Encoding.GSM7),
        ("Привет", 0x00, Encoding.UCS2),
        ("Hello {}", 0x01, Encoding.IA5),
        ("Hello €", 0x01, Encoding.UCS2),  # GSM-7, not ASCII
        ("Hello `", 0x01, Encoding.UCS2),  # ASCII, not GSM-7
        ("", 0x01, Encoding.IA5),
        ("garçon ÿ", 0x03, Encoding.LATIN1),
        ("Hello €", 0x03, Encoding.UCS2),  # GSM-7, not Latin-1
        ("", 0x03, Encoding.LATIN1),
        ("Ёж", 0x03, Encoding.UCS2),
    ],
)
def test_choose_alphabet(text: str, gsm_data_coding: int, expected: Encoding) -> None:
    assert choose_alphabet(text, gsm_data_coding) is expected


@pytest.mark.parametrize(
    ("text", "gsm_data_coding", "udh_octets", "sizes"),
    [
        ("a" * 160, 0x00, 6, [160]),
        ("a" * 161, 0x00, 6, [153, 8]),
        ("a" * 161, 0x00, 7, [152, 9]),
        ("a" * 161, 0x01, 6, [153, 8]),
        ("a" * 161, 0x01, 7, [152, 9]),
        ("é" * 140, 0x03, 6, [140]),
        ("é" * 141, 0x03, 6, [134, 7]),
        ("é" * 141, 0x03, 7, [133, 8]),
        ("я" * 71, 0x00, 6, [67 * 2, 4 * 2]),
        ("я" * 71, 0x00, 7, [66 * 2, 5 * 2]),
        ("я" * 71, 0x03, 6, [67 * 2, 4 * 2]),
    ],
)
def test_encode_text_part_sizes(
    text: str, gsm_data_coding: int, udh_octets: int, sizes: list[int]
) -> None:
    encoded = encode_text(text, gsm_data_coding, udh_octets=udh_octets)
    assert [len(p) for p in encoded.payloads] == sizes


def test_encode_text_data_coding() -> None:
    assert encode_text("Hi", 0x00).data_coding == 0x00
    assert encode_text("Hi", 0x01).data_coding == 0x01
    assert encode_text("Hi", 0x03).data_coding == 0x03
    assert encode_text("Ёж", 0x03, ucs2_data_coding=0x18).data_coding == 0x18


def test_ia5_is_cut_by_septet_weight_and_sent_as_ascii() -> None:
    encoded = encode_text("{" * 80 + "a", 0x01)  # 161 septets on air: two parts
    assert encoded.payloads == (b"{" * 76, b"{{{{a")


def test_encode_text_enforces_max_parts() -> None:
    with pytest.raises(TooManyParts):
        encode_text("é" * (133 * 3 + 1), 0x03, udh_octets=7, max_parts=3)
    assert len(encode_text("é" * 133 * 3, 0x03, udh_octets=7, max_parts=3).payloads) == 3


def test_concat_udh() -> None:
    assert concat_udh(0x1234, 3, 2) == bytes([5, 0, 3, 0x34, 3, 2])
    assert concat_udh(0x123456, 3, 2, reference_bits=16) == bytes([6, 8, 4, 0x34, 0x56, 3, 2])
    assert parse_udh(concat_udh(0xBEEF, 9, 9, 16) + b"x") == (ConcatInfo(0xBEEF, 9, 9), b"x")


def test_decode_reads_ucs2_with_a_message_class() -> None:
    assert decode("Ёж".encode("utf-16-be"), 0x18) == "Ёж"


_codings = st.sampled_from([0x00, 0x01, 0x03])
_udh_sizes = st.sampled_from([6, 7])
_octet_texts = st.one_of(mixed_texts, st.text(alphabet="aé{€çÿ", max_size=700), st.text())


def _decode_strict(data: bytes, data_coding: int) -> str:
    if data_coding == 0x00:
        return gsm7_decode(data)
    codec = {0x01: "ascii", 0x03: "latin-1"}.get(data_coding, "utf-16-be")
    return data.decode(codec)  # strict: half a surrogate pair raises


def _units(payload: bytes, encoding: Encoding) -> int:
    return len(payload) // 2 if encoding is Encoding.UCS2 else len(payload)


@given(_octet_texts, _codings, _udh_sizes)
def test_encode_text_round_trips_whole_code_points(
    text: str, gsm_data_coding: int, udh_octets: int
) -> None:
    encoded = encode_text(text, gsm_data_coding, udh_octets=udh_octets, max_parts=255)
    pieces = [_decode_strict(p, encoded.data_coding) for p in encoded.payloads]
    assert "".join(pieces) == text
    if encoded.data_coding == 0x00:
        assert not any(p.endswith(b"\x1b") for p in encoded.payloads)


@given(_octet_texts, _codings, _udh_sizes)
def test_encode_text_parts_fit_one_sms_with_their_udh(
    text: str, gsm_data_coding: int, udh_octets: int
) -> None:
    encoded = encode_text(text, gsm_data_coding, udh_octets=udh_octets, max_parts=255)
    udh = udh_octets if len(encoded.payloads) > 1 else 0
    septets = encoded.encoding in (Encoding.GSM7, Encoding.IA5)
    # septets start on the first septet boundary after the UDH
    header_bits = -(-udh * 8 // 7) * 7 if septets else udh * 8
    for payload in encoded.payloads:
        assert header_bits + weight_of(payload, encoded.encoding) <= 140 * 8


def weight_of(payload: bytes, encoding: Encoding) -> int:
    """Bits the part's text takes on air."""
    if encoding is Encoding.GSM7:
        return len(payload) * 7
    if encoding is Encoding.IA5:
        return len(gsm7_encode(payload.decode("ascii"))) * 7
    return len(payload) * 8
