"""SMPP provider settings, and the address rules that turn a sender or recipient into TON/NPI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

BindMode = Literal["transceiver", "transmitter+receiver"]

# Type of number / numbering plan (SMPP 3.4 §5.2.5, §5.2.6).
TON_INTERNATIONAL = 1
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
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    connect_timeout: float = 30.0
    close_timeout: float = 5.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    max_parts: int = 10
    registered_delivery: bool = True
    service_type: str = ""
    short_code_max_digits: int = 8  # a digits-only sender up to this long is a short code

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
    return [problem for problem, failed in checks.items() if failed]


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
