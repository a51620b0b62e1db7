"""Garbage from an SMSC, fed to every decoder of ours on the ESME side.

Each property states the contract of one decoder: on any input it returns a value or raises
``MalformedPdu`` (our own ``ValueError``), never anything else; what it returns is safe to
store (no NUL, which PostgreSQL text refuses; bounded ids). The inputs are hypothesis'
mutations of valid PDUs (truncated, command_length too small, too big or over the maximum,
sm_length lying, unknown and overrunning TLVs, non-ASCII addresses, every data_coding) and
plain random bytes. The end-to-end half, a rogue SMSC over TCP, is
``tests/integration/test_smpp_rogue.py``. The simulator's own decoder (what clients send
it) is fuzzed in ``test_smpp_pdu.py``. ``SMSGW_FUZZ_EXAMPLES=2000`` runs a longer fuzz.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmpplib import BindTransceiverResp, SmppCommand, SmppCommandStatus
from aiosmpplib.protocol import PduHeader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.inbound import decode_payload, piece_of
from loadtest import smpp_pdu as p
from providers.base import InboundPart, Receipt
from providers.receipts import receipt_from_deliver_sm
from providers.smpp.pdu import (
    COMMAND_IDS,
    HEADER_LENGTH,
    MAX_PDU_LENGTH,
    SUBMIT_SM_RESP,
    DeliverSm,
    MalformedPdu,
    check_pdu,
    parse_deliver_sm,
    parse_tlvs,
    read_header,
)
from providers.smpp.provider import SmppProvider
from providers.smpp.settings import SmppSettings

EXAMPLES = int(os.environ.get("SMSGW_FUZZ_EXAMPLES", "200"))  # per property
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ASCII = st.characters(min_codepoint=1, max_codepoint=127)
_ANY_TEXT = st.text(max_size=21).map(lambda s: s.replace("\0", ""))
_TLVS = st.dictionaries(
    st.sampled_from([0x001E, 0x0427, 0x0423, 0x0424, 0x020C, 0x020E, 0x020F, 0x1234, 0xFFFF]),
    st.binary(max_size=70),
    max_size=5,
)
_RECEIPT_TEXTS = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda i, s, e, d: (
            f"id:{i} sub:001 dlvrd:001 submit date:{d} done date:{d} stat:{s} err:{e} text:".encode(
                "latin-1", "replace"
            )
        ),
        st.text(max_size=70),
        st.sampled_from(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "", "???"]),
        st.text(max_size=5),
        st.text(st.characters(max_codepoint=0xFF), max_size=14),
    ),
)
_OCTET = st.integers(0, 255)
short_messages = st.builds(
    p.ShortMessage,
    source_addr=st.text(_ASCII, max_size=20),
    destination_addr=st.text(_ASCII, max_size=20),
    short_message=st.one_of(_RECEIPT_TEXTS, st.binary(max_size=254)).map(lambda b: b[:254]),
    service_type=st.just(""),
    source_addr_ton=_OCTET,
    source_addr_npi=_OCTET,
    dest_addr_ton=_OCTET,
    dest_addr_npi=_OCTET,
    esm_class=st.sampled_from([0x00, 0x04, 0x08, 0x20, 0x40, 0x44, 0xFF]),
    protocol_id=_OCTET,
    priority_flag=_OCTET,
    schedule_delivery_time=st.just(""),
    validity_period=st.just(""),
    registered_delivery=_OCTET,
    replace_if_present_flag=_OCTET,
    data_coding=_OCTET,
    sm_default_msg_id=_OCTET,
    tlvs=_TLVS,
)


def _mutate(data: st.DataObject, pdu: bytes) -> bytes:
    """One of the ways an SMSC gets a PDU wrong."""
    how = data.draw(st.sampled_from(["cut", "length", "flip", "tail", "sm_length", "none"]))
    if how == "cut":
        return pdu[: data.draw(st.integers(0, len(pdu)))]
    if how == "length":
        length = data.draw(st.integers(0, 0xFFFFFFFF))
        return struct.pack(">I", length) + pdu[4:]
    if how == "flip":
        at = data.draw(st.integers(HEADER_LENGTH, max(HEADER_LENGTH, len(pdu) - 1)))
        octet = data.draw(st.integers(0, 255))
        return pdu[:at] + bytes([octet]) + pdu[at + 1 :]
    if how == "tail":  # an overrunning, truncated or unknown TLV after the body
        return pdu + data.draw(st.binary(min_size=1, max_size=9))
    if how == "sm_length":
        at = data.draw(st.integers(HEADER_LENGTH, len(pdu) - 1))
        return pdu[:at] + b"\xff" + pdu[at + 1 :]
    return pdu


def _only_malformed(decode: Callable[[bytes], Any], pdu: bytes) -> Any:
    try:
        return decode(pdu)
    except MalformedPdu:
        return None


@fuzz
@given(st.binary(min_size=HEADER_LENGTH, max_size=HEADER_LENGTH))
def test_any_header_is_framed_or_refused(head: bytes) -> None:
    header = _only_malformed(read_header, head)
    if header is not None:
        assert HEADER_LENGTH <= header.length <= MAX_PDU_LENGTH
        assert header.command_id in COMMAND_IDS


@fuzz
@given(
    st.integers(0, 0xFFFFFFFF),
    st.sampled_from(sorted(COMMAND_IDS)) | st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
)
def test_out_of_range_length_or_unknown_command_is_refused(
    length: int, command_id: int, status: int
) -> None:
    head = struct.pack(">IIII", length, command_id, status, 7)
    framed = HEADER_LENGTH <= length <= MAX_PDU_LENGTH and command_id in COMMAND_IDS
    assert (_only_malformed(read_header, head) is not None) is framed


@fuzz
@given(st.binary(max_size=120), st.integers(0, 3))
def test_submit_sm_resp_is_accepted_only_with_a_storable_message_id(
    body: bytes, status: int
) -> None:
    pdu = struct.pack(">IIII", HEADER_LENGTH + len(body), SUBMIT_SM_RESP, status, 1) + body
    header = read_header(pdu[:HEADER_LENGTH])
    try:
        check_pdu(header, pdu)
    except MalformedPdu:
        assert status == 0
        return
    if status == 0:
        message_id = body.split(b"\0", 1)[0]
        assert 1 <= len(message_id) <= 64 and message_id.isascii()
        assert all(0x20 < octet < 0x7F for octet in message_id)


@fuzz
@given(short_messages, st.integers(1, p.MAX_SEQUENCE), st.data())
def test_mutated_deliver_sm_parses_or_raises_malformed(
    sm: p.ShortMessage, sequence: int, data: st.DataObject
) -> None:
    pdu = _mutate(data, p.deliver_sm(sequence, sm))
    parsed = _only_malformed(parse_deliver_sm, pdu)
    if parsed is not None:
        assert isinstance(parsed, DeliverSm)
        assert "\0" not in parsed.source + parsed.destination


@fuzz
@given(st.binary(max_size=400))
def test_random_octets_parse_or_raise_malformed(data: bytes) -> None:
    _only_malformed(parse_deliver_sm, data)
    _only_malformed(lambda pdu: parse_tlvs(pdu, 0), data)


@fuzz
@given(st.integers(0, 255), _RECEIPT_TEXTS, _TLVS)
def test_receipt_parsing_never_raises_and_yields_storable_ids(
    esm_class: int, short_message: bytes, tlvs: dict[int, bytes]
) -> None:
    receipt = receipt_from_deliver_sm("sim", esm_class, short_message, tlvs)
    if receipt is not None:
        assert isinstance(receipt, Receipt) and receipt.provider_message_id
        assert "\0" not in receipt.provider_message_id


@fuzz
@given(st.binary(max_size=300), st.integers(0, 255))
def test_inbound_text_decodes_to_storable_text(payload: bytes, data_coding: int) -> None:
    text = decode_payload(payload, data_coding)
    assert "\0" not in text
    text.encode("utf-8")  # strict: no lone surrogate


@fuzz
@given(short_messages, st.data())
def test_inbound_part_from_garbage_is_a_piece(sm: p.ShortMessage, data: st.DataObject) -> None:
    parsed = _only_malformed(parse_deliver_sm, _mutate(data, p.deliver_sm(1, sm)))
    if parsed is None:
        return
    part = InboundPart(
        provider="sim",
        source=parsed.source,
        destination=parsed.destination,
        data_coding=parsed.data_coding,
        esm_class=parsed.esm_class,
        short_message=parsed.short_message,
        sar=parsed.sar,
        received_at=datetime.now(UTC),
    )
    piece = piece_of(part, "RU", datetime.now(UTC))
    assert "\0" not in piece.source + piece.destination


@pytest.fixture(scope="module")
def provider() -> SmppProvider:
    settings = SmppSettings("rogue", "127.0.0.1", 1, "smsgw", "secret")
    return SmppProvider(settings, lambda receipt: None, lambda part: None)


@fuzz
@given(short_messages, st.data())
def test_the_provider_takes_any_deliver_sm_without_raising(
    provider: SmppProvider, sm: p.ShortMessage, data: st.DataObject
) -> None:
    before = provider.malformed_deliver_sm
    pdu = _mutate(data, p.deliver_sm(1, sm))
    assert provider.deliver(pdu) is None  # our sinks return None: acknowledged at once
    readable = _only_malformed(parse_deliver_sm, pdu) is not None
    assert provider.malformed_deliver_sm == before + (not readable)


@fuzz
@given(st.binary(max_size=80), st.sampled_from([0, 0x0D, 0x0E, 0x400]))
def test_aiosmpplib_bind_resp_decoder_raises_only_value_error(body: bytes, status: int) -> None:
    """ESME decodes bind_*_resp itself; its ``start`` reconnects after a ValueError only."""
    length = HEADER_LENGTH + len(body)
    pdu = struct.pack(">IIII", length, 0x80000009, status, 1) + body
    header = PduHeader(length, SmppCommand.BIND_TRANSCEIVER_RESP, SmppCommandStatus.ESME_ROK, 1)
    with contextlib.suppress(ValueError):
        BindTransceiverResp.from_pdu(pdu, header)
