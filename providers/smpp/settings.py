"""SMPP provider settings, and the address rules that turn a sender or recipient into TON/NPI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BindMode = Literal["transceiver", "transmitter+receiver"]
LongMessages = Literal["udh", "sar", "payload"]

# Type of number / numbering plan (SMPP 3.4 §5.2.5, §5.2.6).
TON_INTERNATIONAL = 1
TON_NATIONAL = 2
TON_NETWORK_SPECIFIC = 3
TON_ALPHANUMERIC = 5
NPI_UNKNOWN = 0
NPI_ISDN = 1

_MAX_ADDRESS = 20  # source_addr / destination_addr are C-strings of at most 21 octets
_MAX_ALPHANUMERIC = 11  # what a handset shows; longer senders are refused by most SMSCs


@dataclass(frozen=True, slots=True)
class SmppSettings:
    """One SMPP account: where to bind, how, and how much to keep in flight.

    ``window`` counts submit_sm sent but not yet answered, per bind. ``reconnect_min`` and
    ``reconnect_max`` bound the jittered backoff between bind attempts. ``connect_timeout``
    is how long ``start()`` waits for the first bind; ``close_timeout`` how long ``close()``
    waits for outstanding responses and for the unbind.
    """

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    bind_mode: BindMode = "transceiver"
    window: int = 100
    # Pool, adaptive window, throttling (providers.smpp.bind and providers.aimd use them).
    binds: int = 1  # transceivers, or transmitter+receiver pairs
    window_min: int = 1  # the adaptive window of each bind moves within [window_min, window]
    latency_target: float = 0.5  # seconds: a slower submit_sm_resp average shrinks the window
    latency_factor: float = 10.0  # … as does an average above this many times the fastest
    throttle_pause: float = 0.05  # seconds a throttled bind waits before it sends again
    throttle_retries: int = 3  # a throttled part is sent again this often before giving up
    quarantine_after: int = 3  # timeouts / nacks / send errors in a row that take a bind out
    quarantine: float = 30.0  # seconds a bind taken out stays unbound
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 30.0
    close_timeout: float = 5.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    max_parts: int = 10
    service_type: str = ""
    short_code_max_digits: int = 8  # a digits-only sender up to this long is a short code
    # Segment transport (long messages, alphabets, receipts, addresses)
    # (providers.smpp.segments applies them; see its docstring for what each option sends.)
    long_messages: LongMessages = "udh"  # "udh" | "sar" TLVs | one "payload" PDU
    concat_reference_bits: Literal[8, 16] = 8  # reference size of the UDH IE or SAR ref
    gsm_data_coding: int = 0x00  # non-UCS-2 texts: 0x00 GSM-7, 0x01 IA5/ASCII, 0x03 Latin-1
    ucs2_data_coding: int = 0x08  # 0x08 (0x18 asks for a flash message)
    # SMPP 3.4 §5.2.17: 0 none, 1 final receipt, 2 on failure only; | 0x10 intermediate.
    # TOML true / false still work: they mean 1 / 0.
    registered_delivery: bool | int = 1
    alphanumeric_ton: int = TON_ALPHANUMERIC  # sender "MyShop"
    alphanumeric_npi: int = NPI_UNKNOWN
    short_code_ton: int = TON_NETWORK_SPECIFIC  # sender "7522", up to short_code_max_digits
    short_code_npi: int = NPI_UNKNOWN
    international_ton: int = TON_INTERNATIONAL  # sender "+79211234567" or longer digits
    international_npi: int = NPI_ISDN
    destination_ton: int = TON_INTERNATIONAL
    destination_npi: int = NPI_ISDN
    # "national": recipients under national_country_code lose it and gain national_prefix
    # ("+79211234567" → "9211234567", or "89211234567" with prefix "8"); others stay.
    destination_format: Literal["international", "national"] = "international"
    national_country_code: str = "7"
    national_prefix: str = ""
    national_ton: int = TON_NATIONAL
    national_npi: int = NPI_ISDN
    # TLS to the SMSC: trust the system CAs or the PEM file tls_ca; tls_verify = false skips
    # the certificate and host name checks (a test SMSC only).
    tls: bool = False
    tls_ca: str | None = None
    tls_verify: bool = True

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ValueError(f"SMPP provider {self.name!r}: {problem}")


def _problems(s: SmppSettings) -> list[str]:
    checks = {
        "system_id is longer than 15 characters": len(s.system_id) > 15,
        "password is longer than 8 characters": len(s.password) > 8,
        "system_type is longer than 12 characters": len(s.system_type) > 12,
        "service_type is longer than 5 characters": len(s.service_type) > 5,
        f"unknown bind_mode {s.bind_mode!r}": s.bind_mode not in _BIND_MODES,
        "window must be at least 1": s.window < 1,
        "max_parts must be between 1 and 255": not 1 <= s.max_parts <= 255,
        "timeouts and intervals must be positive": min(_durations(s)) <= 0,
        "reconnect_min must not exceed reconnect_max": s.reconnect_min > s.reconnect_max,
    }
    checks |= _transport_checks(s)
    checks |= _pool_checks(s)
    return [problem for problem, failed in checks.items() if failed]


def _transport_checks(s: SmppSettings) -> dict[str, bool]:
    """The segment transport block: values an SMSC would refuse or misread, refused here."""
    numbering = (
        (s.alphanumeric_ton, s.alphanumeric_npi),
        (s.short_code_ton, s.short_code_npi),
        (s.international_ton, s.international_npi),
        (s.destination_ton, s.destination_npi),
        (s.national_ton, s.national_npi),
    )
    receipts = int(s.registered_delivery)
    return {
        f"unknown long_messages {s.long_messages!r}": s.long_messages not in _LONG_MESSAGES,
        "concat_reference_bits must be 8 or 16": s.concat_reference_bits not in (8, 16),
        "gsm_data_coding must be 0 (GSM-7), 1 (IA5) or 3 (Latin-1)": s.gsm_data_coding
        not in (0x00, 0x01, 0x03),
        "ucs2_data_coding must be a UCS-2 coding (0x08-0x0B, 0x18-0x1B)": s.ucs2_data_coding
        not in _UCS2_CODINGS,
        "registered_delivery must be 0-31, and not 3 in its low bits": not 0 <= receipts <= 0x1F
        or receipts & 0x03 == 0x03,
        "a TON must be 0-6, an NPI one of 0 1 3 4 6 8 9 10 14 18": any(
            ton not in range(7) or npi not in _NPIS for ton, npi in numbering
        ),
        "unknown destination_format": s.destination_format not in ("international", "national"),
        "national_country_code must be 1 to 3 digits": not _digits(s.national_country_code, 1, 3),
        "national_prefix must be at most 2 digits": not _digits(s.national_prefix, 0, 2),
    }


_LONG_MESSAGES = frozenset({"udh", "sar", "payload"})
_UCS2_CODINGS = frozenset({0x08, 0x09, 0x0A, 0x0B, 0x18, 0x19, 0x1A, 0x1B})
_NPIS = frozenset({0, 1, 3, 4, 6, 8, 9, 10, 14, 18})  # SMPP 3.4 §5.2.6


def _digits(value: str, shortest: int, longest: int) -> bool:
    return shortest <= len(value) <= longest and value.isascii() and (value.isdigit() or not value)


def _pool_checks(s: SmppSettings) -> dict[str, bool]:
    return {
        "binds must be between 1 and 64": not 1 <= s.binds <= 64,
        "window_min must be between 1 and window": not 1 <= s.window_min <= s.window,
        "latency_target and latency_factor must be positive": min(
            s.latency_target, s.latency_factor
        )
        <= 0,
        "throttle_pause, throttle_retries and quarantine must not be negative": min(
            s.throttle_pause, s.throttle_retries, s.quarantine
        )
        < 0,
        "quarantine_after must be at least 1": s.quarantine_after < 1,
    }


_BIND_MODES = frozenset({"transceiver", "transmitter+receiver"})


def _durations(s: SmppSettings) -> tuple[float, ...]:
    return (
        s.enquire_link_interval,
        s.response_timeout,
        s.connect_timeout,
        s.close_timeout,
        s.reconnect_min,
    )


@dataclass(frozen=True, slots=True)
class Address:
    """An SMPP address: TON, NPI and the digits or letters as they go on the wire."""

    ton: int
    npi: int
    value: str


def source_address(sender: str, short_code_max_digits: int = 8) -> Address:
    """E.164 (``+7921…``) → TON 1/NPI 1; short digits → TON 3/NPI 0; letters → TON 5/NPI 0.

    A digits-only sender longer than a short code is taken as international without its "+".
    Raises ``ValueError`` on a sender SMPP cannot carry.
    """
    if sender.startswith("+"):
        return destination_address(sender)
    _check(sender, sender.isascii() and sender.isprintable(), "sender")
    if not sender.isdigit():
        _check(sender, len(sender) <= _MAX_ALPHANUMERIC, "alphanumeric sender")
        return Address(TON_ALPHANUMERIC, NPI_UNKNOWN, sender)
    if len(sender) <= short_code_max_digits:
        return Address(TON_NETWORK_SPECIFIC, NPI_UNKNOWN, sender)
    return Address(TON_INTERNATIONAL, NPI_ISDN, sender)


def destination_address(number: str) -> Address:
    """An E.164 number (with its "+") as TON 1/NPI 1 digits."""
    digits = number.removeprefix("+")
    _check(number, number.startswith("+") and digits.isascii() and digits.isdigit(), "number")
    return Address(TON_INTERNATIONAL, NPI_ISDN, digits)


def _check(value: str, ok: bool, what: str) -> None:
    if not ok or not value or len(value) > _MAX_ADDRESS:
        raise ValueError(f"not a valid SMPP {what} ({len(value)} characters)")
