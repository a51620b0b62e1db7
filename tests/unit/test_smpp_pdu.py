"""The SMPP codec: round trips, and malformed input that only ever raises PduError."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtest import smpp_pdu as p
from loadtest.smpp_pdu import CommandId, PduError, ShortMessage, Status
from providers.smpp.pdu import (
    TLV_MESSAGE_PAYLOAD,
    absolute_time,
    sar_tlvs,
    submit_sm_body,
    submit_sm_head,
    tlv,
)
from providers.smpp.settings import Address


def c_string(size: int) -> st.SearchStrategy[str]:
    """ASCII without NUL that fits a C-string field of ``size`` octets."""
    return st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=size - 1)


octet = st.integers(0, 255)
sequences = st.integers(1, p.MAX_SEQUENCE)
tlv_maps = st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=4)

binds = st.builds(
    p.Bind, c_string(16), c_string(9), c_string(13), octet, octet, octet, c_string(41)
)
short_messages = st.builds(
    p.ShortMessage,
    source_addr=c_string(21),
    destination_addr=c_string(21),
    short_message=st.binary(max_size=255),
    service_type=c_string(6),
    source_addr_ton=octet,
    source_addr_npi=octet,
    dest_addr_ton=octet,
    dest_addr_npi=octet,
    esm_class=octet,
    protocol_id=octet,
    priority_flag=octet,
    schedule_delivery_time=c_string(17),
    validity_period=c_string(17),
    registered_delivery=octet,
    replace_if_present_flag=octet,
    data_coding=octet,
    sm_default_msg_id=octet,
    tlvs=tlv_maps,
)
bind_commands = st.sampled_from(sorted(p.BIND_COMMANDS))


def decode_or_pdu_error(decoder: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(PduError):
        decoder(data)


# -- round trips -----------------------------------------------------------------------------


@given(bind_commands, sequences, binds)
def test_bind_round_trip(command: int, sequence: int, bind: p.Bind) -> None:
    pdu = p.decode_pdu(p.encode_bind(command, sequence, bind))
    assert (pdu.command_id, pdu.status, pdu.sequence) == (command, 0, sequence)
    assert p.decode_bind(pdu.body) == bind


@given(sequences, short_messages)
def test_submit_sm_round_trip(sequence: int, sm: p.ShortMessage) -> None:
    pdu = p.decode_pdu(p.submit_sm(sequence, sm))
    assert (pdu.command_id, pdu.sequence) == (CommandId.SUBMIT_SM, sequence)
    assert p.decode_sm(pdu.body) == sm


@given(sequences, short_messages)
def test_deliver_sm_round_trip(sequence: int, sm: p.ShortMessage) -> None:
    pdu = p.decode_pdu(p.deliver_sm(sequence, sm))
    assert pdu.command_id == CommandId.DELIVER_SM
    assert p.decode_sm(pdu.body) == sm


@given(sequences, c_string(65), st.sampled_from(list(Status)))
def test_submit_sm_resp_round_trip(sequence: int, message_id: str, status: Status) -> None:
    pdu = p.decode_pdu(p.submit_sm_resp(sequence, message_id, status))
    assert (pdu.command_id, pdu.status) == (CommandId.SUBMIT_SM_RESP, status)
    assert pdu.sequence == sequence
    assert p.decode_message_id(pdu.body) == message_id


@given(bind_commands, sequences, c_string(16), st.sampled_from(list(Status)))
def test_bind_resp_round_trip(command: int, sequence: int, system_id: str, status: Status) -> None:
    pdu = p.decode_pdu(p.bind_resp(command, sequence, system_id, status))
    assert (pdu.command_id, pdu.status) == (command | p.RESP_BIT, status)
    assert p.decode_bind_resp(pdu.body) == system_id


@given(tlv_maps)
def test_tlv_round_trip(tlvs: dict[int, bytes]) -> None:
    assert p.decode_tlvs(p.encode_tlvs(tlvs)) == tlvs


@pytest.mark.parametrize(
    ("encode", "command", "status"),
    [
        (p.enquire_link, CommandId.ENQUIRE_LINK, 0),
        (p.enquire_link_resp, CommandId.ENQUIRE_LINK_RESP, 0),
        (p.unbind, CommandId.UNBIND, 0),
        (p.unbind_resp, CommandId.UNBIND_RESP, 0),
        (lambda seq: p.generic_nack(seq, Status.ESME_RINVCMDID), CommandId.GENERIC_NACK, 3),
    ],
)
def test_header_only_pdus(encode: object, command: int, status: int) -> None:
    data = encode(7)  # type: ignore[operator]
    assert data == struct.pack(">IIII", 16, command, status, 7)


def test_deliver_sm_resp_has_an_empty_message_id() -> None:
    pdu = p.decode_pdu(p.deliver_sm_resp(9))
    assert (pdu.command_id, pdu.sequence, pdu.body) == (CommandId.DELIVER_SM_RESP, 9, b"\0")


def test_error_resp_without_body_decodes_to_empty_id() -> None:
    assert p.decode_message_id(b"") == ""
    assert p.decode_bind_resp(b"") == ""


# -- framing ---------------------------------------------------------------------------------


@given(st.lists(st.tuples(sequences, short_messages), max_size=5), st.data())
def test_reader_reassembles_any_chunking(
    items: list[tuple[int, p.ShortMessage]], data: st.DataObject
) -> None:
    stream = b"".join(p.submit_sm(seq, sm) for seq, sm in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader, got = p.PduReader(), []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        reader.feed(stream[start:end])
        while (pdu := reader.next_pdu()) is not None:
            got.append((pdu.sequence, p.decode_sm(pdu.body)))
    assert got == items
    assert reader.pending == 0


@given(sequences, short_messages, st.data())
def test_truncated_pdu_is_incomplete_not_an_error(
    sequence: int, sm: p.ShortMessage, data: st.DataObject
) -> None:
    whole = p.submit_sm(sequence, sm)
    cut = data.draw(st.integers(0, len(whole) - 1))
    reader = p.PduReader()
    reader.feed(whole[:cut])
    assert reader.next_pdu() is None
    assert reader.pending == cut
    with pytest.raises(PduError):
        p.decode_pdu(whole[:cut])


@pytest.mark.parametrize("length", [0, 15, p.MAX_PDU_LENGTH + 1, 0xFFFFFFFF])
def test_command_length_out_of_range(length: int) -> None:
    reader = p.PduReader()
    reader.feed(struct.pack(">IIII", length, CommandId.SUBMIT_SM, 0, 42))
    with pytest.raises(PduError) as raised:
        reader.next_pdu()
    assert raised.value.sequence == 42


@given(st.binary(max_size=300))
def test_random_stream_yields_pdus_or_pdu_error(data: bytes) -> None:
    reader = p.PduReader()
    reader.feed(data)
    try:
        while (pdu := reader.next_pdu()) is not None:
            assert p.HEADER_LENGTH + len(pdu.body) <= len(data)
    except PduError:
        pass


@given(st.binary(max_size=300))
def test_random_bodies_decode_or_raise_pdu_error(data: bytes) -> None:
    for decoder in (p.decode_bind, p.decode_sm, p.decode_message_id, p.decode_bind_resp):
        decode_or_pdu_error(decoder, data)
    decode_or_pdu_error(p.decode_tlvs, data)


@given(short_messages, st.data())
def test_truncated_sm_body_decodes_or_raises_pdu_error(
    sm: p.ShortMessage, data: st.DataObject
) -> None:
    body = p.encode_sm_body(sm)
    cut = data.draw(st.integers(0, len(body) - 1))
    decode_or_pdu_error(p.decode_sm, body[:cut])


@given(binds, st.data())
def test_truncated_bind_body_raises_pdu_error(bind: p.Bind, data: st.DataObject) -> None:
    body = p.decode_pdu(p.encode_bind(CommandId.BIND_TRANSCEIVER, 1, bind)).body
    cut = data.draw(st.integers(0, len(body) - 1))
    with pytest.raises(PduError):
        p.decode_bind(body[:cut])


@pytest.mark.parametrize("data", [b"\x00\x01\x00\x05ab", b"\x00\x01\x00", b"\x00\x01\x00\x00\x02"])
def test_truncated_tlv_is_a_pdu_error(data: bytes) -> None:
    with pytest.raises(PduError):
        p.decode_tlvs(data)


def test_sm_length_overrunning_the_body_is_a_pdu_error() -> None:
    body = p.encode_sm_body(ShortMessage("1", "2", b"hello"))
    with pytest.raises(PduError):
        p.decode_sm(body[:-1])


def test_non_ascii_c_string_is_a_pdu_error() -> None:
    with pytest.raises(PduError):
        p.decode_message_id("é".encode("latin-1") + b"\0")


# -- encoder limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sm",
    [
        p.ShortMessage("1" * 21, "2"),
        p.ShortMessage("1", "2", b"x" * 256),
        p.ShortMessage("1", "2", esm_class=256),
        p.ShortMessage("ü", "2"),
        p.ShortMessage("1\0", "2"),
        p.ShortMessage("1", "2", tlvs={0x10000: b""}),
        p.ShortMessage("1", "2", tlvs={1: b"x" * 0x10000}),
    ],
)
def test_unencodable_short_message_raises_pdu_error(sm: p.ShortMessage) -> None:
    with pytest.raises(PduError):
        p.submit_sm(1, sm)


def test_oversized_pdu_and_bad_header_fields_raise_pdu_error() -> None:
    with pytest.raises(PduError):
        p.frame(CommandId.SUBMIT_SM, 1, b"x" * p.MAX_PDU_LENGTH)
    with pytest.raises(PduError):
        p.frame(CommandId.SUBMIT_SM, 2**32)
    with pytest.raises(PduError):
        p.encode_bind(CommandId.BIND_TRANSCEIVER, 1, p.Bind("x" * 16, "pw"))


# -- message content -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sm", "expected"),
    [
        (p.ShortMessage("1", "2", b"\x05\x00\x03\x2a\x03\x02hello", esm_class=0x40), (42, 3, 2)),
        (p.ShortMessage("1", "2", b"\x06\x08\x04\x01\x02\x02\x01hi", esm_class=0x40), (258, 2, 1)),
        (p.ShortMessage("1", "2", b"\x05\x00\x03\x2a\x03\x02hello"), None),
        (p.ShortMessage("1", "2", b"\x03\x24\x01\x00", esm_class=0x40), None),
        (p.ShortMessage("1", "2", b"", esm_class=0x40), None),
        (
            p.ShortMessage(
                "1", "2", b"part",
                tlvs={0x020C: b"\x01\x00", 0x020E: b"\x04", 0x020F: b"\x03"},
            ),
            (256, 4, 3),
        ),
    ],
)  # fmt: skip
def test_concat_info(sm: p.ShortMessage, expected: tuple[int, int, int] | None) -> None:
    assert p.concat_info(sm) == expected


def test_receipt_text_follows_appendix_b() -> None:
    text = p.receipt_text(
        "A0000001", p.MessageState.UNDELIVERABLE, 1, "2611231200", "2611231201",
        b"Hello\x00world \xff and a long tail",
    )  # fmt: skip
    assert text == (
        b"id:A0000001 sub:001 dlvrd:000 submit date:2611231200 done date:2611231201"
        b" stat:UNDELIV err:001 text:Hello?world ? and a "
    )


def test_receipt_text_delivered() -> None:
    text = p.receipt_text("7", p.MessageState.DELIVERED, 0, "2611231200", "2611231200", b"hi")
    assert b" dlvrd:001 " in text
    assert text.endswith(b"stat:DELIVRD err:000 text:hi")


# -- the provider's submit_sm builders (providers.smpp.pdu), read back by the simulator ------

addresses = st.builds(
    Address, st.integers(0, 6), st.sampled_from([0, 1, 3, 4, 6, 8, 9, 10, 14, 18]), c_string(21)
)
tlv_values = st.dictionaries(
    st.sampled_from([0x020C, 0x020E, 0x020F, 0x0424, 0x1400]), st.binary(max_size=300), max_size=4
)


@given(
    c_string(6), addresses, addresses, octet, octet, st.binary(max_size=254), c_string(17),
    octet, tlv_values,
)  # fmt: skip
def test_provider_submit_sm_body_reads_back(
    service_type: str, source: Address, destination: Address, esm_class: int,
    data_coding: int, short_message: bytes, validity: str, registered: int,
    tlvs: dict[int, bytes],
) -> None:  # fmt: skip
    head = submit_sm_head(service_type, source, destination)
    encoded = b"".join(tlv(tag, value) for tag, value in tlvs.items())
    body = submit_sm_body(
        head, esm_class, data_coding, short_message, validity, registered, encoded
    )
    sm = p.decode_sm(body)
    assert sm == ShortMessage(
        source.value, destination.value, short_message, service_type,
        source.ton, source.npi, destination.ton, destination.npi, esm_class,
        validity_period=validity, registered_delivery=registered, data_coding=data_coding,
        tlvs=tlvs,
    )  # fmt: skip


@given(st.integers(0, 2**40), st.integers(1, 255), st.integers(1, 255))
def test_sar_tlvs_read_back_as_concat(ref: int, total: int, seq: int) -> None:
    head = submit_sm_head("", Address(5, 0, "MyShop"), Address(1, 1, "79211234567"))
    sm = p.decode_sm(submit_sm_body(head, 0, 8, b"\x04\x10", tlvs=sar_tlvs(ref, total, seq)))
    assert p.concat_info(sm) == p.Concat(ref & 0xFFFF, total, seq)
    assert sm.esm_class == 0


def test_message_payload_tlv_with_an_empty_short_message() -> None:
    text = ("Привет! " * 100).encode("utf-16-be")
    head = submit_sm_head("", Address(5, 0, "MyShop"), Address(1, 1, "79211234567"))
    body = submit_sm_body(head, 0, 8, b"", tlvs=tlv(TLV_MESSAGE_PAYLOAD, text))
    sm = p.decode_sm(body)
    assert (sm.short_message, sm.tlvs) == (b"", {0x0424: text})
    assert body.endswith(b"\x00\x00" + b"\x04\x24" + len(text).to_bytes(2, "big") + text)


def test_provider_builders_refuse_what_smpp_cannot_carry() -> None:
    head = submit_sm_head("", Address(5, 0, "MyShop"), Address(1, 1, "79211234567"))
    with pytest.raises(ValueError, match="short_message"):
        submit_sm_body(head, 0, 0, b"x" * 255)
    with pytest.raises(ValueError, match="0x0424"):
        tlv(TLV_MESSAGE_PAYLOAD, b"x" * 0x10000)
    assert len(tlv(TLV_MESSAGE_PAYLOAD, b"x" * 0xFFFF)) == 4 + 0xFFFF


@given(
    st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)),
    st.sampled_from([None, UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=3))]),
)
def test_absolute_time_is_smpp_absolute_time_in_utc(moment: datetime, zone: tzinfo | None) -> None:
    moment = moment.replace(tzinfo=zone)
    utc = moment.astimezone(UTC) if zone else moment
    expected = utc.strftime("%y%m%d%H%M%S") + str(utc.microsecond // 100_000) + "00+"
    assert absolute_time(moment) == expected
