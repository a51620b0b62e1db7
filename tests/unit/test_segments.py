"""Segment transport options: what each provider setting puts on the wire, read back with the
SMSC simulator's own decoder."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config_schema import ConfigError, build
from loadtest.smpp_pdu import Concat, ShortMessage, concat_info, decode_sm
from providers.base import ProviderPermanentError, Submission
from providers.encoding import gsm7_decode, parse_udh
from providers.smpp.segments import submit_bodies
from providers.smpp.settings import SmppSettings
from providers.smpp.status import BAD_ADDRESS, TOO_MANY_PARTS

BASE = SmppSettings("sim", "127.0.0.1", 2775, "smsgw", "secret")
EMOJI = "😀"
GSM = "@£$¥èéùìòÇ\nØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCXYZÄÖÑÜ§¿abcxyzäöñüà"
EXTENSION = "€[]{}^~|\\"
CYRILLIC = "Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЖЗ"

_alphabet = st.sampled_from(GSM + EXTENSION + CYRILLIC + "çÿ" + EMOJI + "𝄞")
texts = st.one_of(
    st.text(_alphabet, max_size=700),
    st.text(st.sampled_from("aé{€"), min_size=100, max_size=700),  # GSM / Latin-1 / IA5
    st.text(st.sampled_from("яЁ" + EMOJI), min_size=60, max_size=400),  # pairs on boundaries
    st.text(max_size=300),  # anything at all (no lone surrogates: hypothesis never makes them)
)
options = st.fixed_dictionaries(
    {
        "long_messages": st.sampled_from(["udh", "sar", "payload"]),
        "concat_reference_bits": st.sampled_from([8, 16]),
        "gsm_data_coding": st.sampled_from([0x00, 0x01, 0x03]),
        "ucs2_data_coding": st.sampled_from([0x08, 0x18]),
    }
)


def settings(**changes: Any) -> SmppSettings:
    return dataclasses.replace(BASE, **changes)


def submit(text: str = "Hi", **changes: Any) -> list[ShortMessage]:
    return bodies(Submission(0x1234_5678, "+79211234567", "MyShop", text), **changes)


def bodies(submission: Submission, **changes: Any) -> list[ShortMessage]:
    return [decode_sm(body) for body in submit_bodies(submission, settings(**changes))]


def octets(sm: ShortMessage) -> bytes:
    """The text's octets: short_message without its UDH, or message_payload."""
    if sm.esm_class & 0x40:
        concat, rest = parse_udh(sm.short_message)
        assert concat is not None
        return rest
    return sm.short_message or sm.tlvs.get(0x0424, b"")


def decode(data: bytes, data_coding: int) -> str:
    if data_coding == 0x00:
        return gsm7_decode(data)
    codec = {0x01: "ascii", 0x03: "latin-1"}.get(data_coding, "utf-16-be")
    return data.decode(codec)  # strict: half a surrogate pair would raise here


def reassemble(sms: list[ShortMessage]) -> str:
    return "".join(decode(octets(sm), sm.data_coding) for sm in sms)


def units(sm: ShortMessage) -> int:
    """Units of text in one part: septets (0x00, 0x01), octets (0x03) or UTF-16 units."""
    text = octets(sm)
    return len(text) // 2 if sm.data_coding & 0x08 else len(text)


# --- every option gives back the text -------------------------------------------------------


@given(texts, options)
def test_parts_decode_back_to_the_text(text: str, option: dict[str, Any]) -> None:
    sms = submit(text, max_parts=255, **option)
    assert reassemble(sms) == text
    assert len({sm.data_coding for sm in sms}) == 1


@given(texts, options)
def test_parts_are_numbered_and_fit_an_sms(text: str, option: dict[str, Any]) -> None:
    sms = submit(text, max_parts=255, **option)
    infos = [concat_info(sm) for sm in sms]
    if len(sms) > 1:
        bits = option["concat_reference_bits"]
        ref = 0x5678 if bits == 16 else 0x78
        assert infos == [Concat(ref, len(sms), n) for n in range(1, len(sms) + 1)]
        assert all(units(sm) <= limit(sm, udh=True, bits=bits) for sm in sms)
    else:
        assert infos == [None]
        assert option["long_messages"] == "payload" or units(sms[0]) <= limit(sms[0])


def limit(sm: ShortMessage, udh: bool = False, bits: int = 8) -> int:
    udh_octets = (7 if bits == 16 else 6) if udh else 0
    if sm.data_coding in (0x00, 0x01):
        return 160 - -(-8 * udh_octets // 7)
    return (140 - udh_octets) // (2 if sm.data_coding & 0x08 else 1)


@given(texts, options)
def test_no_escape_is_left_dangling_at_a_part_end(text: str, option: dict[str, Any]) -> None:
    for sm in submit(text, max_parts=255, **option):
        if sm.data_coding == 0x00:
            assert not octets(sm).endswith(b"\x1b") or octets(sm).endswith(b"\x1b\x1b")


# --- part counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gsm_data_coding", "udh", "sar", "udh16"),
    [
        ("a" * 160, 0x00, 1, 1, 1),
        ("a" * 161, 0x00, 2, 2, 2),  # 153 + 8
        ("a" * 306, 0x00, 2, 2, 3),  # 16-bit reference: 152 a part
        ("{" * 80, 0x00, 1, 1, 1),  # an escape pair costs two septets
        ("{" * 81, 0x00, 2, 2, 2),
        ("a" * 161, 0x01, 2, 2, 2),  # IA5 is cut as the SMSC will send it: GSM-7
        ("{" * 81, 0x01, 2, 2, 2),
        ("é" * 140, 0x03, 1, 1, 1),  # Latin-1 is 8-bit on air: 140, 134 with a UDH
        ("é" * 141, 0x03, 2, 2, 2),
        ("é" * 268, 0x03, 2, 2, 3),  # 133 a part with a 16-bit reference
        ("я" * 70, 0x00, 1, 1, 1),
        ("я" * 71, 0x00, 2, 2, 2),  # 67 + 4
        ("я" * 134, 0x03, 2, 2, 3),  # 66 a part with a 16-bit reference
        (EMOJI * 35, 0x00, 1, 1, 1),
        (EMOJI * 36, 0x00, 2, 2, 2),  # 33 pairs a part, with either reference
        (EMOJI * 67, 0x00, 3, 3, 3),  # a pair never splits: 33 + 33 + 1
    ],
)
def test_part_counts(text: str, gsm_data_coding: int, udh: int, sar: int, udh16: int) -> None:
    coding = {"gsm_data_coding": gsm_data_coding}
    assert len(submit(text, **coding)) == udh
    # SAR parts hold no UDH, but the SMSC adds one on air: they are cut to the same size
    assert len(submit(text, long_messages="sar", **coding)) == sar
    assert len(submit(text, concat_reference_bits=16, **coding)) == udh16
    assert len(submit(text, long_messages="payload", **coding)) == 1


def test_emoji_pairs_run_into_the_next_part_whole() -> None:
    sms = submit("я" * 66 + EMOJI + "я" * 10)
    assert [units(sm) for sm in sms] == [66, 12]
    assert decode(octets(sms[1]), 0x08).startswith(EMOJI)


def test_cyrillic_is_ucs2_whatever_the_gsm_coding() -> None:
    for coding in (0x00, 0x01, 0x03):
        (sm,) = submit("Привет", gsm_data_coding=coding)
        assert (sm.data_coding, sm.short_message) == (0x08, "Привет".encode("utf-16-be"))


@pytest.mark.parametrize(
    ("text", "gsm_data_coding", "data_coding", "short_message"),
    [
        ("Hi €", 0x00, 0x00, b"Hi \x1b\x65"),
        ("Hi {}", 0x01, 0x01, b"Hi {}"),
        ("Hi £", 0x01, 0x08, "Hi £".encode("utf-16-be")),  # GSM-7 but not ASCII
        ("Hi `", 0x01, 0x08, "Hi `".encode("utf-16-be")),  # ASCII but not GSM-7
        ("garçon", 0x00, 0x08, "garçon".encode("utf-16-be")),
        ("garçon", 0x03, 0x03, b"gar\xe7on"),
        ("Hi €", 0x03, 0x08, "Hi €".encode("utf-16-be")),  # GSM-7 but not Latin-1
    ],
)
def test_gsm_data_coding(
    text: str, gsm_data_coding: int, data_coding: int, short_message: bytes
) -> None:
    (sm,) = submit(text, gsm_data_coding=gsm_data_coding)
    assert (sm.data_coding, sm.short_message) == (data_coding, short_message)


def test_ucs2_data_coding() -> None:
    (sm,) = submit("Привет", ucs2_data_coding=0x18)
    assert sm.data_coding == 0x18


# --- how each option carries a long text ----------------------------------------------------


def test_udh_parts_carry_the_8bit_reference_ie() -> None:
    sms = submit("я" * 71)
    assert [sm.short_message[:6] for sm in sms] == [
        bytes([5, 0, 3, 0x78, 2, 1]),
        bytes([5, 0, 3, 0x78, 2, 2]),
    ]
    assert all(sm.esm_class == 0x40 and not sm.tlvs for sm in sms)
    assert len(sms[0].short_message) == 6 + 134


def test_udh_parts_carry_the_16bit_reference_ie() -> None:
    sms = submit("я" * 71, concat_reference_bits=16)
    assert sms[0].short_message[:7] == bytes([6, 8, 4, 0x56, 0x78, 2, 1])
    assert len(sms[0].short_message) == 7 + 132


@pytest.mark.parametrize(("bits", "ref", "first"), [(8, 0x78, 153), (16, 0x5678, 152)])
def test_sar_parts_carry_tlvs_and_no_udh(bits: int, ref: int, first: int) -> None:
    sms = submit("a" * 200, long_messages="sar", concat_reference_bits=bits)
    assert [sm.esm_class for sm in sms] == [0, 0]
    assert [sm.short_message for sm in sms] == [b"a" * first, b"a" * (200 - first)]
    assert [sm.tlvs for sm in sms] == [
        {0x020C: ref.to_bytes(2, "big"), 0x020E: b"\x02", 0x020F: bytes([n])} for n in (1, 2)
    ]


def test_payload_is_one_pdu_with_an_empty_short_message() -> None:
    text = "Привет! " * 40
    (sm,) = submit(text, long_messages="payload")
    assert (sm.short_message, sm.esm_class, sm.data_coding) == (b"", 0, 0x08)
    assert sm.tlvs == {0x0424: text.encode("utf-16-be")}


@pytest.mark.parametrize("mode", ["udh", "sar", "payload"])
def test_a_short_text_is_a_plain_submit_sm_whatever_the_option(mode: str) -> None:
    (sm,) = submit("Ваш код 1234", long_messages=mode, concat_reference_bits=16)
    assert (sm.esm_class, sm.tlvs) == (0, {})
    assert sm.short_message == "Ваш код 1234".encode("utf-16-be")


@pytest.mark.parametrize("mode", ["udh", "sar", "payload"])
def test_max_parts_is_a_permanent_refusal_whatever_the_option(mode: str) -> None:
    assert len(submit("я" * 67 * 3, long_messages=mode, max_parts=3)) in (1, 3)
    with pytest.raises(ProviderPermanentError) as caught:
        submit("я" * (67 * 3 + 1), long_messages=mode, max_parts=3)
    assert caught.value.code == TOO_MANY_PARTS


def test_more_than_255_parts_is_refused() -> None:
    with pytest.raises(ProviderPermanentError):
        submit("a" * 153 * 256, long_messages="payload", max_parts=255)


# --- receipts and validity ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registered_delivery", "want_receipt", "expected"),
    [(True, True, 1), (False, True, 0), (1, True, 1), (2, True, 2), (0x11, True, 0x11),
     (1, False, 0), (0x12, False, 0)],
)  # fmt: skip
def test_registered_delivery(registered_delivery: int, want_receipt: bool, expected: int) -> None:
    submission = Submission(1, "+79211234567", "MyShop", "a" * 200, want_receipt=want_receipt)
    sms = bodies(submission, registered_delivery=registered_delivery)
    assert [sm.registered_delivery for sm in sms] == [expected, expected]


def test_validity_goes_on_every_part() -> None:
    expires = datetime(2026, 11, 23, 12, 30, 5, 400_000, tzinfo=UTC)
    submission = Submission(1, "+79211234567", "MyShop", "я" * 100, expires_at=expires)
    assert [sm.validity_period for sm in bodies(submission)] == ["261123123005400+"] * 2


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("MyShop", (5, 0, "MyShop")),
        ("7522", (3, 0, "7522")),
        ("+79211234567", (1, 1, "79211234567")),
        ("79211234567", (1, 1, "79211234567")),
    ],
)
def test_source_ton_npi_defaults(sender: str, expected: tuple[int, int, str]) -> None:
    (sm,) = bodies(Submission(1, "+79211234567", sender, "hi"))
    assert (sm.source_addr_ton, sm.source_addr_npi, sm.source_addr) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("MyShop", (1, 9, "MyShop")),
        ("7522", (6, 4, "7522")),
        ("+79211234567", (2, 8, "79211234567")),
    ],
)
def test_source_ton_npi_as_configured(sender: str, expected: tuple[int, int, str]) -> None:
    configured = {
        "alphanumeric_ton": 1, "alphanumeric_npi": 9, "short_code_ton": 6, "short_code_npi": 4,
        "international_ton": 2, "international_npi": 8,
    }  # fmt: skip
    (sm,) = bodies(Submission(1, "+79211234567", sender, "hi"), **configured)
    assert (sm.source_addr_ton, sm.source_addr_npi, sm.source_addr) == expected


@pytest.mark.parametrize(
    ("changes", "number", "expected"),
    [
        ({}, "+79211234567", (1, 1, "79211234567")),
        ({"destination_ton": 0, "destination_npi": 0}, "+79211234567", (0, 0, "79211234567")),
        ({"destination_format": "national"}, "+79211234567", (2, 1, "9211234567")),
        (
            {"destination_format": "national", "national_prefix": "8", "national_ton": 0},
            "+79211234567",
            (0, 1, "89211234567"),
        ),
        ({"destination_format": "national"}, "+375291234567", (1, 1, "375291234567")),
        (
            {"destination_format": "national", "national_country_code": "375"},
            "+375291234567",
            (2, 1, "291234567"),
        ),
    ],
)
def test_destination_format(
    changes: dict[str, Any], number: str, expected: tuple[int, int, str]
) -> None:
    (sm,) = bodies(Submission(1, number, "MyShop", "hi"), **changes)
    assert (sm.dest_addr_ton, sm.dest_addr_npi, sm.destination_addr) == expected


@pytest.mark.parametrize(
    ("sender", "number"),
    [("Очень", "+79211234567"), ("TwelveLetter", "+79211234567"), ("MyShop", "79211234567")],
)
def test_bad_addresses_are_permanent(sender: str, number: str) -> None:
    with pytest.raises(ProviderPermanentError) as caught:
        bodies(Submission(1, number, sender, "hi"))
    assert caught.value.code == BAD_ADDRESS


# --- settings -------------------------------------------------------------------------------


def test_defaults_keep_todays_behaviour() -> None:
    assert (BASE.long_messages, BASE.concat_reference_bits, BASE.registered_delivery) == (
        "udh",
        8,
        1,
    )
    assert (BASE.gsm_data_coding, BASE.ucs2_data_coding) == (0x00, 0x08)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"long_messages": "split"}, "long_messages"),
        ({"concat_reference_bits": 12}, "concat_reference_bits"),
        ({"gsm_data_coding": 0x08}, "gsm_data_coding"),
        ({"ucs2_data_coding": 0x03}, "ucs2_data_coding"),
        ({"registered_delivery": 3}, "registered_delivery"),
        ({"registered_delivery": 0x20}, "registered_delivery"),
        ({"registered_delivery": -1}, "registered_delivery"),
        ({"alphanumeric_ton": 7}, "TON"),
        ({"destination_npi": 2}, "NPI"),
        ({"destination_format": "local"}, "destination_format"),
        ({"national_country_code": ""}, "national_country_code"),
        ({"national_country_code": "+7"}, "national_country_code"),
        ({"national_prefix": "800"}, "national_prefix"),
    ],
)
def test_settings_refuse_bad_values(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        settings(**changes)


def config(**extra: Any) -> dict[str, Any]:
    return {"name": "sim", "host": "h", "port": 1, "system_id": "s", "password": "p", **extra}


@pytest.mark.parametrize(("value", "expected"), [(True, 1), (False, 0), (2, 2), (0x11, 0x11)])
def test_registered_delivery_from_toml_takes_booleans_and_numbers(
    value: bool | int, expected: int
) -> None:
    built = build(SmppSettings, config(registered_delivery=value), "providers[0]")
    assert int(built.registered_delivery) == expected


def test_transport_block_from_toml() -> None:
    built = build(
        SmppSettings,
        config(
            long_messages="sar", concat_reference_bits=16, gsm_data_coding=3,
            ucs2_data_coding=8, alphanumeric_ton=5, alphanumeric_npi=0,
            destination_format="national", national_prefix="8",
        ),
        "providers[0]",
    )  # fmt: skip
    assert (built.long_messages, built.concat_reference_bits, built.national_prefix) == (
        "sar",
        16,
        "8",
    )


@pytest.mark.parametrize(
    "extra",
    [{"long_messages": "split"}, {"concat_reference_bits": 12}, {"registered_delivery": "yes"}],
)
def test_bad_transport_values_from_toml_name_the_key(extra: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(extra))):
        build(SmppSettings, config(**extra), "providers[0]")
