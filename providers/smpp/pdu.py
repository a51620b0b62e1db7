"""The few SMPP 3.4 PDU layouts the provider builds or reads itself; bytes in, values out.

aiosmpplib frames, sends and reads every PDU; these functions replace only its per-message
encoders and decoders on the hot path: a submit_sm body is built once per part from bytes
that ``providers.encoding`` already produced, and a deliver_sm is read as raw octets (its
dataclass decoding and receipt parsing cost ~43 µs a receipt, several times the rest).
Every reader raises ``ValueError`` on a malformed PDU and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.smpp.settings import Address

HEADER_LENGTH = 16
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_MESSAGE_PAYLOAD = 0x0424

_HEADER = struct.Struct(">IIII")
_TLV_HEAD = struct.Struct(">HH")
_NUL = b"\x00"


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    command_id: int
    status: int
    sequence: int


@dataclass(frozen=True, slots=True)
class DeliverSm:
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
        raise ValueError(f"PDU header is {len(data)} octets")
    header = Header(*_HEADER.unpack_from(data))
    if header.length < HEADER_LENGTH:
        raise ValueError(f"PDU length {header.length} is shorter than its header")
    return header


def message_id(pdu: bytes) -> str:
    """The message_id of a submit_sm_resp; SMSCs may leave the body out of a refusal."""
    return pdu[HEADER_LENGTH:].split(_NUL, 1)[0].decode("ascii", "replace")


def submit_sm_head(service_type: str, source: Address, destination: Address) -> bytes:
    """The part of a submit_sm body shared by every part of one message."""
    return b"".join(
        (
            service_type.encode("ascii") + _NUL,
            bytes((source.ton, source.npi)) + source.value.encode("ascii") + _NUL,
            bytes((destination.ton, destination.npi)),
            destination.value.encode("ascii") + _NUL,
        )
    )


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
    return utc.strftime("%y%m%d%H%M%S") + str(utc.microsecond // 100_000) + "00+"


def parse_deliver_sm(pdu: bytes) -> DeliverSm:
    """Read a deliver_sm (header included) down to its short_message and TLVs."""
    try:
        return _parse_deliver_sm(pdu)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed deliver_sm: {exc.__class__.__name__}") from None


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
        tag, length = _TLV_HEAD.unpack_from(pdu, pos)
        value = pdu[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise IndexError("TLV runs past the PDU")
        tlvs[tag] = value
        pos += 4 + length
    return tlvs


def _c_string(pdu: bytes, pos: int) -> tuple[str, int]:
    end = pdu.index(_NUL, pos)
    return pdu[pos:end].decode("ascii"), end + 1
