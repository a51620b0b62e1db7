"""A small SMPP 3.4 PDU codec: bytes in, values out, no I/O.

Only what the SMSC simulator and its raw clients need: the header, bind_*, submit_sm /
deliver_sm (one body layout), the message-id responses, the header-only PDUs, TLVs and the
delivery-receipt text of the spec's Appendix B. Every decoder raises ``PduError`` and nothing
else on malformed input; encoders raise it on values the wire format cannot carry.

PDU bodies are ``NamedTuple``s rather than dataclasses: they are immutable values all the
same, and are built several times per message on the simulator's hot path, where a tuple is
several times cheaper to construct.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Literal, NamedTuple

HEADER_LENGTH = 16
MAX_PDU_LENGTH = 65536
MAX_SEQUENCE = 0x7FFFFFFF
RESP_BIT = 0x80000000

_HEADER = struct.Struct(">IIII")
_TLV_HEAD = struct.Struct(">HH")
_BYTE2 = struct.Struct(">BB")
_BYTE3 = struct.Struct(">BBB")
_BYTE5 = struct.Struct(">BBBBB")


class CommandId(IntEnum):
    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


BIND_COMMANDS = frozenset(
    {CommandId.BIND_RECEIVER, CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER}
)


class Status(IntEnum):
    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RTHROTTLED = 0x58


class Tag(IntEnum):
    RECEIPTED_MESSAGE_ID = 0x001E
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


class MessageState(IntEnum):
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


ESM_CLASS_RECEIPT = 0x04
ESM_CLASS_UDHI = 0x40


class PduError(ValueError):
    """A PDU that cannot be decoded (or a value that cannot be encoded).

    ``sequence`` is the header's sequence number when the header itself was readable, so that
    the receiver can still answer with a generic_nack.
    """

    def __init__(self, message: str, sequence: int | None = None) -> None:
        super().__init__(message)
        self.sequence = sequence


class Pdu(NamedTuple):
    command_id: int
    status: int
    sequence: int
    body: bytes


class Bind(NamedTuple):
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


class ShortMessage(NamedTuple):
    """The body shared by submit_sm and deliver_sm."""

    source_addr: str
    destination_addr: str
    short_message: bytes = b""
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: dict[int, bytes] = {}  # noqa: RUF012 - never mutated; decoders build fresh dicts


class Concat(NamedTuple):
    """Where one part sits in a concatenated message (from the UDH or the SAR TLVs)."""

    reference: int
    total: int
    part: int


# -- framing ---------------------------------------------------------------------------------


def frame(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    length = HEADER_LENGTH + len(body)
    if length > MAX_PDU_LENGTH:
        raise PduError(f"PDU of {length} octets exceeds {MAX_PDU_LENGTH}")
    try:
        return _HEADER.pack(length, command_id, status, sequence) + body
    except struct.error as exc:
        raise PduError(f"header field out of range: {exc}") from exc


def decode_pdu(data: bytes) -> Pdu:
    """Decode exactly one whole PDU."""
    reader = PduReader()
    reader.feed(data)
    pdu = reader.next_pdu()
    if pdu is None or reader.pending:
        raise PduError(f"expected exactly one PDU in {len(data)} octets")
    return pdu


class PduReader:
    """Splits a byte stream into whole PDUs and keeps the incomplete tail for the next feed.

    After ``next_pdu`` has raised, the stream has lost its framing: drop the connection.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    @property
    def pending(self) -> int:
        """Octets buffered that do not yet form a whole PDU."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        self._buf = self._buf[self._pos :] + data if self.pending else data
        self._pos = 0

    def next_pdu(self) -> Pdu | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_LENGTH:
            return None
        length, command_id, status, sequence = _HEADER.unpack_from(buf, pos)
        if not HEADER_LENGTH <= length <= MAX_PDU_LENGTH:
            raise PduError(f"command_length {length} out of range", sequence)
        end = pos + length
        if end > len(buf):
            return None
        self._pos = end
        return Pdu(command_id, status, sequence, buf[pos + HEADER_LENGTH : end])


# -- field helpers ---------------------------------------------------------------------------


def _cstr(buf: bytes, pos: int, size: int) -> tuple[str, int]:
    """Read a C-octet string of at most ``size`` octets including its NUL."""
    end = buf.find(b"\0", pos, pos + size)
    if end < 0:
        raise PduError(f"C-string at offset {pos} not terminated within {size} octets")
    try:
        return buf[pos:end].decode("ascii"), end + 1
    except UnicodeDecodeError as exc:
        raise PduError(f"C-string at offset {pos} is not ASCII") from exc


def _enc_cstr(value: str, size: int) -> bytes:
    if not value:
        return b"\0"
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise PduError(f"{value!r} is not ASCII") from exc
    if len(raw) >= size or b"\0" in raw:
        raise PduError(f"{value!r} does not fit a C-string of {size} octets")
    return raw + b"\0"


def decode_tlvs(buf: bytes, pos: int = 0) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    while pos < len(buf):
        if len(buf) - pos < _TLV_HEAD.size:
            raise PduError(f"truncated TLV header at offset {pos}")
        tag, length = _TLV_HEAD.unpack_from(buf, pos)
        pos += _TLV_HEAD.size + length
        if pos > len(buf):
            raise PduError(f"TLV 0x{tag:04X} overruns the body")
        tlvs[tag] = buf[pos - length : pos]
    return tlvs


def encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    try:
        return b"".join(_TLV_HEAD.pack(tag, len(value)) + value for tag, value in tlvs.items())
    except struct.error as exc:
        raise PduError(f"TLV out of range: {exc}") from exc


# -- bodies ----------------------------------------------------------------------------------


def decode_bind(body: bytes) -> Bind:
    system_id, pos = _cstr(body, 0, 16)
    password, pos = _cstr(body, pos, 9)
    system_type, pos = _cstr(body, pos, 13)
    if len(body) - pos < 3:
        raise PduError("bind body truncated")
    version, ton, npi = _BYTE3.unpack_from(body, pos)
    address_range, pos = _cstr(body, pos + 3, 41)
    if pos != len(body):
        raise PduError(f"{len(body) - pos} trailing octets after bind body")
    return Bind(system_id, password, system_type, version, ton, npi, address_range)


def encode_bind(command_id: int, sequence: int, bind: Bind) -> bytes:
    try:
        numbers = _BYTE3.pack(bind.interface_version, bind.addr_ton, bind.addr_npi)
    except struct.error as exc:
        raise PduError(f"bind field out of range: {exc}") from exc
    body = b"".join(
        (
            _enc_cstr(bind.system_id, 16),
            _enc_cstr(bind.password, 9),
            _enc_cstr(bind.system_type, 13),
            numbers,
            _enc_cstr(bind.address_range, 41),
        )
    )
    return frame(command_id, sequence, body)


def decode_sm(body: bytes) -> ShortMessage:
    """Decode a submit_sm or deliver_sm body."""
    try:
        service_type, p = _cstr(body, 0, 6)
        src_ton, src_npi = _BYTE2.unpack_from(body, p)
        source_addr, p = _cstr(body, p + 2, 21)
        dst_ton, dst_npi = _BYTE2.unpack_from(body, p)
        destination_addr, p = _cstr(body, p + 2, 21)
        esm_class, protocol_id, priority = _BYTE3.unpack_from(body, p)
        schedule, p = _cstr(body, p + 3, 17)
        validity, p = _cstr(body, p, 17)
        registered, replace, coding, default_id, sm_length = _BYTE5.unpack_from(body, p)
    except struct.error as exc:
        raise PduError("short message body truncated") from exc
    p += 5 + sm_length
    if p > len(body):
        raise PduError(f"sm_length {sm_length} overruns the body")
    return ShortMessage(
        source_addr, destination_addr, body[p - sm_length : p], service_type,
        src_ton, src_npi, dst_ton, dst_npi, esm_class, protocol_id, priority,
        schedule, validity, registered, replace, coding, default_id, decode_tlvs(body, p),
    )  # fmt: skip


def encode_sm_body(sm: ShortMessage) -> bytes:
    if len(sm.short_message) > 255:
        raise PduError(f"short_message of {len(sm.short_message)} octets exceeds 255")
    try:
        src = _BYTE2.pack(sm.source_addr_ton, sm.source_addr_npi)
        dst = _BYTE2.pack(sm.dest_addr_ton, sm.dest_addr_npi)
        flags = _BYTE3.pack(sm.esm_class, sm.protocol_id, sm.priority_flag)
        tail = _BYTE5.pack(
            sm.registered_delivery, sm.replace_if_present_flag, sm.data_coding,
            sm.sm_default_msg_id, len(sm.short_message),
        )  # fmt: skip
    except struct.error as exc:
        raise PduError(f"short message field out of range: {exc}") from exc
    return b"".join(
        (
            _enc_cstr(sm.service_type, 6), src, _enc_cstr(sm.source_addr, 21),
            dst, _enc_cstr(sm.destination_addr, 21), flags,
            _enc_cstr(sm.schedule_delivery_time, 17), _enc_cstr(sm.validity_period, 17),
            tail, sm.short_message, encode_tlvs(sm.tlvs),
        )
    )  # fmt: skip


def submit_sm(sequence: int, sm: ShortMessage) -> bytes:
    return frame(CommandId.SUBMIT_SM, sequence, encode_sm_body(sm))


def deliver_sm(sequence: int, sm: ShortMessage) -> bytes:
    return frame(CommandId.DELIVER_SM, sequence, encode_sm_body(sm))


def decode_message_id(body: bytes) -> str:
    """The body of submit_sm_resp / deliver_sm_resp; error responses may leave it out."""
    if not body:
        return ""
    message_id, pos = _cstr(body, 0, 65)
    if pos != len(body):
        raise PduError(f"{len(body) - pos} trailing octets after message_id")
    return message_id


def decode_bind_resp(body: bytes) -> str:
    """The SMSC's system_id; an optional sc_interface_version TLV may follow."""
    if not body:
        return ""
    system_id, pos = _cstr(body, 0, 16)
    decode_tlvs(body, pos)
    return system_id


# -- responses and header-only PDUs ----------------------------------------------------------


def bind_resp(bind_command: int, sequence: int, system_id: str, status: int = 0) -> bytes:
    # The spec allows an error bind_resp without a body, but some ESMEs (aiosmpplib among
    # them) fail to parse that, so the system_id is always sent.
    return frame(bind_command | RESP_BIT, sequence, _enc_cstr(system_id, 16), status)


def submit_sm_resp(sequence: int, message_id: str, status: int = 0) -> bytes:
    return frame(CommandId.SUBMIT_SM_RESP, sequence, _enc_cstr(message_id, 65), status)


def deliver_sm_resp(sequence: int, status: int = 0) -> bytes:
    return frame(CommandId.DELIVER_SM_RESP, sequence, b"\0", status)


def enquire_link(sequence: int) -> bytes:
    return frame(CommandId.ENQUIRE_LINK, sequence)


def enquire_link_resp(sequence: int) -> bytes:
    return frame(CommandId.ENQUIRE_LINK_RESP, sequence)


def unbind(sequence: int) -> bytes:
    return frame(CommandId.UNBIND, sequence)


def unbind_resp(sequence: int) -> bytes:
    return frame(CommandId.UNBIND_RESP, sequence)


def generic_nack(sequence: int, status: int) -> bytes:
    return frame(CommandId.GENERIC_NACK, sequence, status=status)


# -- message content -------------------------------------------------------------------------


def concat_info(sm: ShortMessage) -> Concat | None:
    """Concatenation reference of one part: from the UDH (IEI 0x00 / 0x08) or SAR TLVs."""
    if sm.esm_class & ESM_CLASS_UDHI:
        return _udh_concat(sm.short_message)
    ref = sm.tlvs.get(Tag.SAR_MSG_REF_NUM)
    total = sm.tlvs.get(Tag.SAR_TOTAL_SEGMENTS)
    part = sm.tlvs.get(Tag.SAR_SEGMENT_SEQNUM)
    if ref is None or not total or not part:
        return None
    return Concat(int.from_bytes(ref, "big"), total[0], part[0])


def _udh_concat(data: bytes) -> Concat | None:
    if not data:
        return None
    pos, end = 1, min(1 + data[0], len(data))
    while pos + 2 <= end:
        iei, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3 and len(value) == 3:
            return Concat(value[0], value[1], value[2])
        if iei == 0x08 and length == 4 and len(value) == 4:
            return Concat(int.from_bytes(value[:2], "big"), value[2], value[3])
        pos += 2 + length
    return None


RECEIPT_STAT = {
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
}

_PRINTABLE = bytes(c if 0x20 <= c < 0x7F else ord("?") for c in range(256))


def receipt_text(
    message_id: str, state: MessageState, err: int, submit_date: str, done_date: str, text: bytes
) -> bytes:
    """Appendix B receipt text; dates are YYMMDDhhmm, ``text`` is cut to 20 printable octets."""
    dlvrd = "001" if state is MessageState.DELIVERED else "000"
    preview = text[:20].translate(_PRINTABLE).decode("ascii")
    return (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submit_date} "
        f"done date:{done_date} stat:{RECEIPT_STAT[state]} err:{err:03d} text:{preview}"
    ).encode("ascii")


# -- mobile-originated messages ---------------------------------------------------------------

# GSM 03.38 default alphabet by septet (0x1B is the escape) and its extension table; the
# simulator keeps its own copy so that it never checks the gateway's codec against itself.
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = "\f\n^\x14{(})\\/[<~=]>|@€e"  # pairs: character, code
_GSM_SEPTETS = {ch: bytes((code,)) for code, ch in enumerate(_GSM_BASIC) if code != 0x1B} | {
    _GSM_EXTENSION[i]: bytes((0x1B, ord(_GSM_EXTENSION[i + 1])))
    for i in range(0, len(_GSM_EXTENSION), 2)
}
DATA_CODING_GSM7 = 0x00
DATA_CODING_UCS2 = 0x08
# Octets (UCS-2) or septets (GSM-7) per part: alone, and beside a 6-octet concatenation UDH.
_SINGLE_PART = {DATA_CODING_GSM7: 160, DATA_CODING_UCS2: 140}
_UDH_PART = {DATA_CODING_GSM7: 153, DATA_CODING_UCS2: 134}

MoConcat = Literal["udh", "sar", "payload"]


def gsm7_fits(text: str) -> bool:
    return all(ch in _GSM_SEPTETS for ch in text)


def encode_units(text: str, data_coding: int) -> list[bytes]:
    """Per character: its unpacked septets (GSM-7) or UTF-16-BE octets (UCS-2).

    A part boundary never falls inside one unit (an escape pair or a surrogate pair).
    """
    if data_coding == DATA_CODING_GSM7:
        try:
            return [_GSM_SEPTETS[ch] for ch in text]
        except KeyError as exc:
            raise PduError(f"{exc.args[0]!r} is not in the GSM 03.38 alphabet") from None
    return [ch.encode("utf-16-be") for ch in text]


def cut_units(units: list[bytes], limit: int) -> list[bytes]:
    """Join units into chunks of at most ``limit`` octets."""
    chunks: list[bytes] = []
    current = b""
    for unit in units:
        if len(current) + len(unit) > limit:
            chunks.append(current)
            current = b""
        current += unit
    return [*chunks, current]


def mo_messages(
    template: ShortMessage, text: str, concat: MoConcat, ucs2: bool | None, reference: int
) -> list[ShortMessage]:
    """The deliver_sm bodies of one mobile-originated text, as an operator splits it.

    ``template`` carries the addresses; ``reference`` is the concatenation reference (one
    octet in the UDH, two in the SAR TLV). A text that fits one part goes whole, unless
    ``concat`` is "payload" (then always one PDU with message_payload).
    """
    if ucs2 is None:
        ucs2 = not gsm7_fits(text)
    coding = DATA_CODING_UCS2 if ucs2 else DATA_CODING_GSM7
    units = encode_units(text, coding)
    whole = b"".join(units)
    base = template._replace(data_coding=coding, esm_class=0)
    if concat == "payload":
        return [base._replace(short_message=b"", tlvs={Tag.MESSAGE_PAYLOAD: whole})]
    if len(whole) <= _SINGLE_PART[coding]:
        return [base._replace(short_message=whole)]
    if concat == "sar":
        return _sar_parts(base, cut_units(units, _SINGLE_PART[coding]), reference)
    return _udh_parts(base, cut_units(units, _UDH_PART[coding]), reference)


def _udh_parts(base: ShortMessage, chunks: list[bytes], reference: int) -> list[ShortMessage]:
    total = _total(chunks)
    return [
        base._replace(
            esm_class=ESM_CLASS_UDHI,
            short_message=bytes((5, 0, 3, reference & 0xFF, total, seq)) + chunk,
        )
        for seq, chunk in enumerate(chunks, 1)
    ]


def _sar_parts(base: ShortMessage, chunks: list[bytes], reference: int) -> list[ShortMessage]:
    total = _total(chunks)
    return [
        base._replace(
            short_message=chunk,
            tlvs={
                Tag.SAR_MSG_REF_NUM: (reference & 0xFFFF).to_bytes(2, "big"),
                Tag.SAR_TOTAL_SEGMENTS: bytes((total,)),
                Tag.SAR_SEGMENT_SEQNUM: bytes((seq,)),
            },
        )
        for seq, chunk in enumerate(chunks, 1)
    ]


def _total(chunks: list[bytes]) -> int:
    if len(chunks) > 255:
        raise PduError(f"{len(chunks)} parts: a concatenated message has at most 255")
    return len(chunks)


def addressed(source: str, destination: str) -> ShortMessage:
    """An empty message between two addresses: "+digits" is international (TON 1, NPI 1),
    other digits unknown/ISDN, anything else alphanumeric (TON 5)."""
    (src, src_ton, src_npi), (dst, dst_ton, dst_npi) = _address(source), _address(destination)
    return ShortMessage(
        src, dst, source_addr_ton=src_ton, source_addr_npi=src_npi,
        dest_addr_ton=dst_ton, dest_addr_npi=dst_npi,
    )  # fmt: skip


def _address(value: str) -> tuple[str, int, int]:
    if value.startswith("+"):
        return value[1:], 1, 1
    return (value, 0, 1) if value.isdigit() else (value, 5, 0)
