"""The few SMPP 3.4 PDU layouts the provider builds or reads itself; bytes in, values out.

aiosmpplib frames, sends and reads every PDU; these functions replace only its per-message
encoders and decoders on the hot path: a submit_sm body is built once per part from bytes
that ``providers.encoding`` already produced, and a deliver_sm is read as raw octets (its
dataclass decoding and receipt parsing cost ~43 µs a receipt, several times the rest).
Every reader raises ``MalformedPdu`` (a ``ValueError``) on a malformed PDU and nothing else.

Framing. ``read_header`` and ``check_pdu`` decide whether a PDU read off a session can be
handled at all: a command_length out of range or an unknown command_id loses the stream's
framing, and a submit_sm_resp that accepts a message under an id no SMPP message_id can be
(over 65 octets, unterminated, not printable ASCII) would store garbage as the provider id.
Both end that session (``providers.smpp.client``); the SMSC's other sessions go on.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import NamedTuple

from providers.smpp.settings import Address

HEADER_LENGTH = 16
MAX_PDU_LENGTH = 0x10000 + 1024  # message_payload holds up to 64 KiB
MAX_MESSAGE_ID = 65  # octets, its NUL included (SMPP 3.4 §5.2.23)
ESME_RINVCMDLEN = 0x00000002
ESME_RINVCMDID = 0x00000003
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
GENERIC_NACK = 0x80000000
# SMPP 3.4 §5.1.2.1: every command_id (requests, and their responses with 0x80000000 set).
_REQUESTS = (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x15, 0x21, 0x103)
COMMAND_IDS = frozenset(
    (*_REQUESTS, *(0x80000000 | c for c in _REQUESTS), GENERIC_NACK, 0x0B, 0x102)
)
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_MESSAGE_PAYLOAD = 0x0424

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence
_TLV_HEAD = struct.Struct(">HH")
_NUL = b"\x00"


class MalformedPdu(ValueError):
    """A PDU that breaks SMPP; ``status`` is the generic_nack status that answers it."""

    def __init__(self, reason: str, status: int = ESME_RINVCMDLEN) -> None:
        super().__init__(reason)
        self.status = status


class Header(NamedTuple):  # a tuple: one is built for every PDU read
    length: int
    command_id: int
    status: int
    sequence: int


class DeliverSm(NamedTuple):  # a tuple: one is built for every receipt
    """The fields of a deliver_sm the provider uses.

    ``short_message`` keeps the UDH when ``esm_class`` has 0x40; it holds message_payload
    when the SMSC used that TLV instead.
    """

    source: str
    destination: str
    data_coding: int
    esm_class: int
    short_message: bytes
    tlvs: dict[int, bytes]

    @property
    def sar(self) -> tuple[int, int, int] | None:
        """(reference, total, sequence) from the SAR TLVs, when all three are there."""
        ref = self.tlvs.get(TLV_SAR_MSG_REF_NUM)
        total = self.tlvs.get(TLV_SAR_TOTAL_SEGMENTS)
        seq = self.tlvs.get(TLV_SAR_SEGMENT_SEQNUM)
        if not (ref and total and seq):
            return None
        return int.from_bytes(ref, "big"), total[0], seq[0]


def parse_header(data: bytes) -> Header:
    """The 16-octet header, with any command_status (vendor codes included)."""
    if len(data) < HEADER_LENGTH:
        raise MalformedPdu(f"PDU header is {len(data)} octets")
    header = Header._make(HEADER.unpack_from(data))
    if header.length < HEADER_LENGTH:
        raise MalformedPdu(f"PDU length {header.length} is shorter than its header")
    return header


def read_header(data: bytes, max_length: int = MAX_PDU_LENGTH) -> Header:
    """``parse_header``, refusing what cannot be framed or handled (``check_framing``)."""
    header = parse_header(data)
    check_framing(header.length, header.command_id, max_length)
    return header


def check_framing(length: int, command_id: int, max_length: int = MAX_PDU_LENGTH) -> None:
    """Refuse a header that cannot be framed or handled: a command_length under the header's
    or over ``max_length`` (never read: it would hold the session on a huge read), and an
    unknown command_id."""
    if length < HEADER_LENGTH:
        raise MalformedPdu(f"PDU length {length} is shorter than its header")
    if length > max_length:
        raise MalformedPdu(f"PDU length {length} is over {max_length}")
    if command_id not in COMMAND_IDS:
        raise MalformedPdu(f"unknown command_id 0x{command_id:08x}", ESME_RINVCMDID)


def check_pdu(header: Header, pdu: bytes) -> None:
    """Refuse a whole PDU whose content the session cannot act on; see the module docstring."""
    if len(pdu) != header.length:
        raise MalformedPdu(f"PDU of {len(pdu)} octets, command_length {header.length}")
    if header.command_id == SUBMIT_SM_RESP and header.status == 0:
        accepted_message_id(pdu)


def accepted_message_id(pdu: bytes) -> str:
    """The message_id of an accepting submit_sm_resp: 1 to 64 printable ASCII octets,
    NUL-terminated (trailing TLVs allowed)."""
    end = pdu.find(_NUL, HEADER_LENGTH, HEADER_LENGTH + MAX_MESSAGE_ID)
    raw = pdu[HEADER_LENGTH:end]
    if end < 0 or not raw or not all(0x20 < octet < 0x7F for octet in raw):
        raise MalformedPdu(f"submit_sm_resp message_id {pdu[HEADER_LENGTH:][:80]!r}")
    return raw.decode("ascii")


def message_id(pdu: bytes) -> str:
    """The message_id of a submit_sm_resp; SMSCs may leave the body out of a refusal."""
    return pdu[HEADER_LENGTH:].split(_NUL, 1)[0].decode("ascii", "replace")


def submit_sm_head(service_type: str, source: Address, destination: Address) -> bytes:
    """The part of a submit_sm body shared by every part of one message."""
    service = service_type.encode("ascii") + _NUL
    return service + address_octets(source) + address_octets(destination)


def address_octets(address: Address) -> bytes:
    """TON, NPI and the address as a C-octet string."""
    return bytes((address.ton, address.npi)) + address.value.encode("ascii") + _NUL


def submit_sm_body(
    head: bytes,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    validity: str = "",
    registered_delivery: int = 1,
    tlvs: bytes = b"",
) -> bytes:
    """A whole submit_sm body: ``head``, one part (up to 254 octets, UDH included) and the
    optional parameters ``tlvs`` already encoded (``tlv``, ``sar_tlvs``)."""
    if len(short_message) > 254:
        raise ValueError(f"short_message of {len(short_message)} octets")
    return b"".join(
        (
            head,
            bytes((esm_class, 0, 0)),  # protocol_id, priority_flag
            _NUL,  # schedule_delivery_time: now
            validity.encode("ascii") + _NUL,
            bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
            short_message,
            tlvs,
        )
    )


def tlv(tag: int, value: bytes) -> bytes:
    """One optional parameter; raises ``ValueError`` on a value over 65,535 octets."""
    if len(value) > 0xFFFF:
        raise ValueError(f"TLV 0x{tag:04X} of {len(value)} octets")
    return _TLV_HEAD.pack(tag, len(value)) + value


def sar_tlvs(ref: int, total: int, seq: int) -> bytes:
    """The three SAR parameters of one part: a 16-bit reference, the total, this part's number."""
    return b"".join(
        (
            tlv(TLV_SAR_MSG_REF_NUM, (ref & 0xFFFF).to_bytes(2, "big")),
            tlv(TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
            tlv(TLV_SAR_SEGMENT_SEQNUM, bytes((seq,))),
        )
    )


def absolute_time(moment: datetime) -> str:
    """SMPP absolute time (§7.1.1) in UTC: ``YYMMDDhhmmsst00+``."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (  # strftime("%y%m%d%H%M%S"), at half its cost: one per message
        f"{utc.year % 100:02d}{utc.month:02d}{utc.day:02d}"
        f"{utc.hour:02d}{utc.minute:02d}{utc.second:02d}{utc.microsecond // 100_000}00+"
    )


def parse_deliver_sm(pdu: bytes) -> DeliverSm:
    """Read a deliver_sm (header included) down to its short_message and TLVs."""
    try:
        return _parse_deliver_sm(pdu)
    except (IndexError, ValueError, struct.error) as exc:
        raise MalformedPdu(f"malformed deliver_sm: {exc.__class__.__name__}") from None


def _parse_deliver_sm(pdu: bytes) -> DeliverSm:
    pos = pdu.index(_NUL, HEADER_LENGTH) + 1  # service_type
    source, pos = _c_string(pdu, pos + 2)  # after source_addr_ton, source_addr_npi
    destination, pos = _c_string(pdu, pos + 2)
    esm_class = pdu[pos]
    pos = pdu.index(_NUL, pos + 3) + 1  # protocol_id, priority_flag, schedule_delivery_time
    pos = pdu.index(_NUL, pos) + 1  # validity_period
    data_coding, length = pdu[pos + 2], pdu[pos + 4]
    start = pos + 5  # registered_delivery, replace_if_present, data_coding, default_msg_id
    short_message = pdu[start : start + length]
    if len(short_message) != length:
        raise IndexError("short_message runs past the PDU")
    tlvs = parse_tlvs(pdu, start + length)
    if not short_message:
        short_message = tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    return DeliverSm(source, destination, data_coding, esm_class, short_message, tlvs)


def parse_tlvs(pdu: bytes, pos: int) -> dict[int, bytes]:
    """Optional parameters from ``pos`` to the end; a repeated tag keeps its last value."""
    tlvs: dict[int, bytes] = {}
    while pos < len(pdu):
        if pos + 4 > len(pdu):
            raise MalformedPdu(f"truncated TLV header at offset {pos}")
        tag, length = _TLV_HEAD.unpack_from(pdu, pos)
        value = pdu[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise MalformedPdu(f"TLV 0x{tag:04X} runs past the PDU")
        tlvs[tag] = value
        pos += 4 + length
    return tlvs


def _c_string(pdu: bytes, pos: int) -> tuple[str, int]:
    end = pdu.index(_NUL, pos)
    return pdu[pos:end].decode("ascii"), end + 1
