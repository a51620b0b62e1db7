"""One ``Submission`` to its submit_sm bodies, the way one provider wants them; no I/O.

Theory of operation. ``providers.encoding`` picks the alphabet (GSM-7, IA5 or Latin-1 as the
provider's ``gsm_data_coding`` says, else UCS-2) and cuts the text at code points, so an
escape pair or a surrogate pair never straddles two parts. A text that fits one SMS is one
plain submit_sm whatever the option; a longer one travels as ``long_messages`` says:

- ``udh``: one submit_sm per part, the concatenation UDH (8- or 16-bit reference) at the
  head of short_message and esm_class UDHI set.
- ``sar``: one submit_sm per part, no UDH, the sar_msg_ref_num / sar_total_segments /
  sar_segment_seqnum TLVs instead. Parts are cut to the same size as with a UDH (153/67, or
  152/66 for a 16-bit reference): the SMSC turns the TLVs into that very UDH on air, so a
  160-septet SAR part would not fit one SMS there.
- ``payload``: one submit_sm, empty short_message, the whole text in message_payload; the
  SMSC cuts it. ``max_parts`` still counts the SMS it will take on air, so every option
  refuses the same texts.

Addresses: the sender's kind (alphanumeric, short code, E.164) and the recipient's format
choose the TON/NPI configured for them. Every refusal is a ``ProviderPermanentError``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import NamedTuple

from providers.base import ProviderPermanentError, Submission
from providers.encoding import (
    ESM_UDHI,
    UDH_CONCAT_8,
    UDH_CONCAT_16,
    TextParts,
    TooManyParts,
    concat_udh,
    encode_text,
)
from providers.smpp.pdu import (
    TLV_MESSAGE_PAYLOAD,
    absolute_time,
    address_octets,
    sar_tlvs,
    submit_sm_body,
    tlv,
)
from providers.smpp.settings import (
    TON_ALPHANUMERIC,
    TON_INTERNATIONAL,
    TON_NETWORK_SPECIFIC,
    Address,
    SmppSettings,
    destination_address,
    source_address,
)
from providers.smpp.status import BAD_ADDRESS, TOO_MANY_PARTS


class Part(NamedTuple):  # a tuple: one is built for every part sent
    """What differs between the submit_sm of one message: flags, octets, TLVs."""

    esm_class: int
    short_message: bytes
    tlvs: bytes = b""


def submit_bodies(submission: Submission, settings: SmppSettings) -> list[bytes]:
    """Every submit_sm body of ``submission``, in order; raises ``ProviderPermanentError``."""
    return BodyBuilder(settings).bodies(submission)


class BodyBuilder:
    """``submit_bodies`` for one account, which keeps each sender's address octets: an
    account sends from a few senders, and the sender's checks cost as much as the rest of
    the head (this runs for every message)."""

    _MAX_SENDERS = 1024

    def __init__(self, settings: SmppSettings) -> None:
        self.settings = settings
        self._senders: dict[str, bytes] = {}

    def bodies(self, submission: Submission) -> list[bytes]:
        s = self.settings
        text = _encode(submission.text, s)
        head = self._head(submission)
        validity = absolute_time(submission.expires_at) if submission.expires_at else ""
        receipt = int(s.registered_delivery) if submission.want_receipt else 0
        return [
            submit_sm_body(
                head, p.esm_class, text.data_coding, p.short_message, validity, receipt, p.tlvs
            )
            for p in carry(text.payloads, submission.message_id, s)
        ]

    def _head(self, submission: Submission) -> bytes:
        s = self.settings
        try:
            sender = self._senders.get(submission.source) or self._sender(submission.source)
            recipient = address_octets(destination(submission.destination, s))
            return s.service_type.encode("ascii") + b"\0" + sender + recipient
        except ValueError as exc:
            raise ProviderPermanentError(BAD_ADDRESS, str(exc)) from None

    def _sender(self, sender: str) -> bytes:
        octets = address_octets(source(sender, self.settings))
        if len(self._senders) >= self._MAX_SENDERS:
            self._senders.clear()
        self._senders[sender] = octets
        return octets


def carry(payloads: tuple[bytes, ...], ref: int, settings: SmppSettings) -> tuple[Part, ...]:
    """The parts as ``settings.long_messages`` carries them; one payload is a plain part."""
    if len(payloads) == 1:
        return (Part(0, payloads[0]),)
    return _CARRIERS[settings.long_messages](payloads, ref, settings.concat_reference_bits)


def source(sender: str, settings: SmppSettings) -> Address:
    """The sender with the TON/NPI configured for its kind; raises ``ValueError``."""
    plain = source_address(sender, settings.short_code_max_digits)
    ton, npi = {
        TON_ALPHANUMERIC: (settings.alphanumeric_ton, settings.alphanumeric_npi),
        TON_NETWORK_SPECIFIC: (settings.short_code_ton, settings.short_code_npi),
        TON_INTERNATIONAL: (settings.international_ton, settings.international_npi),
    }[plain.ton]
    return Address(ton, npi, plain.value)


def destination(number: str, settings: SmppSettings) -> Address:
    """An E.164 recipient, national within ``national_country_code`` when so configured."""
    digits = destination_address(number).value
    national = settings.national_country_code
    if settings.destination_format == "national" and digits.startswith(national):
        local = settings.national_prefix + digits.removeprefix(national)
        return Address(settings.national_ton, settings.national_npi, local)
    return Address(settings.destination_ton, settings.destination_npi, digits)


def _encode(text: str, s: SmppSettings) -> TextParts:
    udh = UDH_CONCAT_16 if s.concat_reference_bits == 16 else UDH_CONCAT_8
    try:
        return encode_text(text, s.gsm_data_coding, s.ucs2_data_coding, udh, s.max_parts)
    except TooManyParts as exc:
        raise ProviderPermanentError(TOO_MANY_PARTS, str(exc)) from None


def _by_udh(payloads: tuple[bytes, ...], ref: int, bits: int) -> tuple[Part, ...]:
    total = len(payloads)
    return tuple(
        Part(ESM_UDHI, concat_udh(ref, total, seq, bits) + payload)
        for seq, payload in enumerate(payloads, start=1)
    )


def _by_sar(payloads: tuple[bytes, ...], ref: int, bits: int) -> tuple[Part, ...]:
    ref &= (1 << bits) - 1  # the SMSC may have only an 8-bit IE to put it in
    total = len(payloads)
    return tuple(
        Part(0, payload, sar_tlvs(ref, total, seq)) for seq, payload in enumerate(payloads, start=1)
    )


def _by_payload(payloads: tuple[bytes, ...], ref: int, bits: int) -> tuple[Part, ...]:
    # Parts are cut at code points, so their octets joined are the whole text's.
    return (Part(0, b"", tlv(TLV_MESSAGE_PAYLOAD, b"".join(payloads))),)


_Carrier = Callable[[tuple[bytes, ...], int, int], tuple[Part, ...]]
_CARRIERS: MappingProxyType[str, _Carrier] = MappingProxyType(
    {"udh": _by_udh, "sar": _by_sar, "payload": _by_payload}
)
