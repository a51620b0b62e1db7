"""Receipt text parsing, deliver_sm classification, TLVs and hex/decimal id matching."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.base import Receipt, ReceiptStatus
from providers.receipts import (
    MESSAGE_STATE_MAP,
    STAT_MAP,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    ReceiptText,
    canonical_id,
    id_candidates,
    is_receipt,
    parse_done_date,
    parse_receipt_text,
    receipt_from_deliver_sm,
)

KANNEL = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2305281527 done date:2305281529 "
    "stat:DELIVRD err:000 text:Привет, ваш код 1234"
)

# --- the receipt text ---------------------------------------------------------------------


def test_standard_text() -> None:
    assert parse_receipt_text(KANNEL) == ReceiptText(
        id="0123456789",
        sub="001",
        dlvrd="001",
        submit_date="2305281527",
        done_date="2305281529",
        stat="DELIVRD",
        err="000",
        text="Привет, ваш код 1234",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # upper-case keys, no text part
        (
            "ID:7F3A SUB:001 DLVRD:000 SUBMIT DATE:2401011200 DONE DATE:2401011300 "
            "STAT:UNDELIV ERR:011",
            ReceiptText("7F3A", "001", "000", "2401011200", "2401011300", "UNDELIV", "011"),
        ),
        # underscores and run-together date keys, seconds in the dates, fields reordered
        (
            "stat:EXPIRED err:027 submit_date:240101120030 id:55 donedate:240102120030",
            ReceiptText("55", None, None, "240101120030", "240102120030", "EXPIRED", "027"),
        ),
        # extra spaces everywhere, space before the colon
        (
            "  id: 1001   sub:001  dlvrd:001 submit  date:2401011200 stat :  DELIVRD  ",
            ReceiptText("1001", "001", "001", "2401011200", None, "DELIVRD"),
        ),
        # operator extras (network codes) are skipped, not glued to the previous field
        (
            "id:c0ffee sub:001 dlvrd:001 stat:DELIVRD err:000 mcc:250 mnc:01 Text:hi",
            ReceiptText("c0ffee", "001", "001", None, None, "DELIVRD", "000", "hi"),
        ),
        # empty values are absent
        ("id:42 stat: err: text:", ReceiptText("42")),
        ("stat:REJECTD", ReceiptText(stat="REJECTD")),
    ],
)
def test_tolerant_text(text: str, expected: ReceiptText) -> None:
    assert parse_receipt_text(text) == expected


def test_the_echoed_message_cannot_forge_fields() -> None:
    parsed = parse_receipt_text("id:1 stat:UNDELIV err:001 text:id:2 stat:DELIVRD err:000")
    assert parsed is not None
    assert (parsed.id, parsed.stat, parsed.err) == ("1", "UNDELIV", "001")
    assert parsed.text == "id:2 stat:DELIVRD err:000"


@pytest.mark.parametrize("text", ["", "hello", "Ваш код 1234", "sub:001 dlvrd:001 err:000"])
def test_no_id_and_no_stat_is_not_a_receipt_text(text: str) -> None:
    assert parse_receipt_text(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2305281529", datetime(2023, 5, 28, 15, 29, tzinfo=UTC)),
        ("230528152907", datetime(2023, 5, 28, 15, 29, 7, tzinfo=UTC)),
        (" 2305281529 ", datetime(2023, 5, 28, 15, 29, tzinfo=UTC)),
        ("2313011200", None),
        ("2302301200", None),
        ("23052815", None),
        ("23052815290", None),
        ("2305281529+3", None),
        ("２３０５２８１５２９", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_done_date(value: str | None, expected: datetime | None) -> None:
    assert parse_done_date(value) == expected


# --- status maps --------------------------------------------------------------------------


def test_stat_map_covers_the_appendix_b_states_and_full_words() -> None:
    assert STAT_MAP["DELETED"] is ReceiptStatus.UNDELIVERABLE
    assert STAT_MAP["DELIVERED"] is STAT_MAP["DELIVRD"] is ReceiptStatus.DELIVERED
    assert STAT_MAP["REJECTED"] is STAT_MAP["REJECTD"] is ReceiptStatus.REJECTED
    assert STAT_MAP["ACCEPTED"] is STAT_MAP["ACCEPTD"] is ReceiptStatus.ACCEPTED
    assert STAT_MAP["UNDELIVERABLE"] is STAT_MAP["UNDELIV"]


def test_message_state_map() -> None:
    assert [MESSAGE_STATE_MAP[n] for n in range(1, 9)] == [
        ReceiptStatus.ENROUTE,
        ReceiptStatus.DELIVERED,
        ReceiptStatus.EXPIRED,
        ReceiptStatus.UNDELIVERABLE,
        ReceiptStatus.UNDELIVERABLE,
        ReceiptStatus.ACCEPTED,
        ReceiptStatus.UNKNOWN,
        ReceiptStatus.REJECTED,
    ]


# --- deliver_sm ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("esm_class", "receipt"),
    [
        (0x00, False),  # MO
        (0x40, False),  # MO with a UDH
        (0x04, True),  # SMSC delivery receipt
        (0x44, True),  # ... with the UDHI bit set too
        (0x08, True),  # SME delivery acknowledgement
        (0x10, True),  # SME manual/user acknowledgement
        (0x20, True),  # intermediate delivery notification
        (0x18, False),  # conversation abort
        (0x03, False),  # messaging-mode bits only
    ],
)
def test_classification(esm_class: int, receipt: bool) -> None:
    assert is_receipt(esm_class) is receipt
    result = receipt_from_deliver_sm("mts", esm_class, KANNEL.encode(), {})
    assert (result is not None) is receipt


def test_receipt_from_text() -> None:
    assert receipt_from_deliver_sm("mts", 0x04, KANNEL.encode(), {}) == Receipt(
        provider="mts",
        provider_message_id="0123456789",
        status=ReceiptStatus.DELIVERED,
        error_code=None,
        done_at=datetime(2023, 5, 28, 15, 29, tzinfo=UTC),
    )


def test_receipt_from_text_with_error() -> None:
    text = (
        b"id:A1B2 sub:001 dlvrd:000 submit date:2401011200 done date:2401021200 "
        b"stat:EXPIRED err:027"
    )
    receipt = receipt_from_deliver_sm("beeline", 0x04, text, {})
    assert receipt is not None
    assert (receipt.provider_message_id, receipt.status, receipt.error_code) == (
        "A1B2",
        ReceiptStatus.EXPIRED,
        "027",
    )


def test_tlvs_win_over_the_text() -> None:
    tlvs = {
        TLV_RECEIPTED_MESSAGE_ID: b"4F2A9C\x00",
        TLV_MESSAGE_STATE: bytes([5]),
        TLV_NETWORK_ERROR_CODE: bytes([3, 0x00, 0x01]),
    }
    receipt = receipt_from_deliver_sm("megafon", 0x04, KANNEL.encode(), tlvs)
    assert receipt == Receipt(
        provider="megafon",
        provider_message_id="4F2A9C",
        status=ReceiptStatus.UNDELIVERABLE,
        error_code="3:0001",
        done_at=datetime(2023, 5, 28, 15, 29, tzinfo=UTC),
    )


def test_tlvs_alone_are_enough() -> None:
    tlvs = {TLV_RECEIPTED_MESSAGE_ID: b"778899", TLV_MESSAGE_STATE: bytes([2])}
    receipt = receipt_from_deliver_sm("tele2", 0x04, b"", tlvs)
    assert receipt == Receipt("tele2", "778899", ReceiptStatus.DELIVERED)


def test_unusable_tlvs_fall_back_to_the_text() -> None:
    tlvs = {
        TLV_RECEIPTED_MESSAGE_ID: b"\x00",
        TLV_MESSAGE_STATE: bytes([0x63]),
        TLV_NETWORK_ERROR_CODE: b"\x03\x00",
    }
    text = b"id:99 stat:REJECTD err:088"
    receipt = receipt_from_deliver_sm("mts", 0x04, text, tlvs)
    assert receipt == Receipt("mts", "99", ReceiptStatus.REJECTED, error_code="088")


def test_zero_network_error_is_no_error() -> None:
    tlvs = {TLV_RECEIPTED_MESSAGE_ID: b"1", TLV_NETWORK_ERROR_CODE: bytes([3, 0, 0])}
    receipt = receipt_from_deliver_sm("mts", 0x04, b"stat:DELIVRD err:000", tlvs)
    assert receipt is not None
    assert receipt.error_code is None


def test_unknown_or_missing_stat_is_unknown() -> None:
    for text in (b"id:1 stat:WHATEVER", b"id:1 err:000"):
        receipt = receipt_from_deliver_sm("mts", 0x04, text, {})
        assert receipt is not None
        assert receipt.status is ReceiptStatus.UNKNOWN


def test_stat_full_word_lower_case() -> None:
    receipt = receipt_from_deliver_sm("mts", 0x04, b"id:1 stat:delivered", {})
    assert receipt is not None
    assert receipt.status is ReceiptStatus.DELIVERED


def test_receipt_without_an_id_is_dropped() -> None:
    assert receipt_from_deliver_sm("mts", 0x04, b"stat:DELIVRD err:000", {}) is None
    assert receipt_from_deliver_sm("mts", 0x04, b"", {TLV_MESSAGE_STATE: b"\x02"}) is None


def test_id_is_kept_raw_but_trimmed() -> None:
    tlvs = {TLV_RECEIPTED_MESSAGE_ID: b" 00AB12 \x00junk"}
    receipt = receipt_from_deliver_sm("mts", 0x04, b"", tlvs)
    assert receipt is not None
    assert receipt.provider_message_id == "00AB12"


@pytest.mark.parametrize(
    "short_message",
    [
        "id:77 stat:DELIVRD text:Привет".encode("utf-16-be"),
        "id:77 stat:DELIVRD text:Привет".encode("utf-16-le"),
        "id:77 stat:DELIVRD text:Привет".encode("cp1251"),
        "id:77 stat:DELIVRD text:Привет".encode(),
    ],
)
def test_text_in_odd_encodings_still_parses(short_message: bytes) -> None:
    receipt = receipt_from_deliver_sm("mts", 0x04, short_message, {})
    assert receipt == Receipt("mts", "77", ReceiptStatus.DELIVERED)


# --- ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("001A2B", "1a2b"),
        (" 1A2B\x00", "1a2b"),
        ("0", "0"),
        ("000", "0"),
        ("", ""),
        ("\x00 ", ""),
        ("0a1b-C2", "a1b-c2"),
    ],
)
def test_canonical_id(raw: str, expected: str) -> None:
    assert canonical_id(raw) == expected


def test_decimal_receipt_matches_hex_response() -> None:
    assert id_candidates("6699") == ("6699", "1a2b", "26265")


def test_hex_receipt_matches_decimal_response() -> None:
    assert id_candidates("1A2B") == ("1a2b", "6699")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", ("0",)),
        ("10", ("10", "a", "16")),
        ("00ff", ("ff", "255")),
        ("msg-0042", ("msg-0042",)),
        ("4b6a1c9e-1d3f-4a55-9c8e-3b2f1a0d9e77", ("4b6a1c9e-1d3f-4a55-9c8e-3b2f1a0d9e77",)),
        ("", ()),
        ("٤٢", ("٤٢",)),  # Arabic-Indic digits are not a decimal id
        ("9" * 65, ("9" * 65,)),  # longer than any SMPP id: no conversion
    ],
)
def test_id_candidates(raw: str, expected: tuple[str, ...]) -> None:
    assert id_candidates(raw) == expected


# --- properties ---------------------------------------------------------------------------

tlv_values = st.dictionaries(
    st.sampled_from([TLV_RECEIPTED_MESSAGE_ID, TLV_MESSAGE_STATE, TLV_NETWORK_ERROR_CODE, 0x0204]),
    st.binary(max_size=70),
)
smpp_ids = st.integers(min_value=0, max_value=10**64 - 1)
field_values = st.text(alphabet="0123456789ABCDEFabcdef-", min_size=1, max_size=20)


@given(st.integers(min_value=0, max_value=255), st.binary(max_size=300), tlv_values)
def test_receipt_from_deliver_sm_never_raises(
    esm_class: int, short_message: bytes, tlvs: dict[int, bytes]
) -> None:
    result = receipt_from_deliver_sm("p", esm_class, short_message, tlvs)
    assert result is None or result.provider_message_id


@given(st.text(max_size=300), st.integers(min_value=0, max_value=255))
def test_arbitrary_text_never_raises(text: str, esm_class: int) -> None:
    receipt_from_deliver_sm("p", esm_class, text.encode(), {})
    parse_receipt_text(text)


@given(smpp_ids)
def test_hex_form_is_a_candidate_of_the_decimal(n: int) -> None:
    assert canonical_id(format(n, "X")) in id_candidates(str(n))


@given(smpp_ids)
def test_decimal_form_is_a_candidate_of_the_hex(n: int) -> None:
    assert canonical_id(str(n)) in id_candidates(format(n, "X"))


@given(smpp_ids, st.integers(min_value=0, max_value=5))
def test_leading_zeros_do_not_matter(n: int, zeros: int) -> None:
    assert id_candidates("0" * zeros + format(n, "X")) == id_candidates(format(n, "x"))


@given(
    st.builds(
        ReceiptText,
        id=field_values,
        sub=st.from_regex(r"\A[0-9]{3}\Z"),
        dlvrd=st.from_regex(r"\A[0-9]{3}\Z"),
        submit_date=st.from_regex(r"\A[0-9]{10}\Z"),
        done_date=st.from_regex(r"\A[0-9]{10}([0-9]{2})?\Z"),
        stat=st.sampled_from(sorted(STAT_MAP)),
        err=st.from_regex(r"\A[0-9]{3}\Z"),
        text=st.text(min_size=1, max_size=20).map(str.strip).filter(bool),
    ),
    st.sampled_from(["submit date", "submit_date", "submitdate", "Submit Date"]),
)
def test_rendered_standard_text_parses_back(fields: ReceiptText, submit_key: str) -> None:
    rendered = (
        f"id:{fields.id} sub:{fields.sub} dlvrd:{fields.dlvrd} "
        f"{submit_key}:{fields.submit_date} done date:{fields.done_date} "
        f"stat:{fields.stat} err:{fields.err} text:{fields.text}"
    )
    assert parse_receipt_text(rendered) == fields
