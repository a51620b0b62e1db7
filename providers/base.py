"""What every provider takes and returns.

The provider layer defines its own small types so that it can be read, tested and
reused without the gateway above it. A provider turns a ``Submission`` into one
``SubmitResult`` (one provider message id per part), and reports ``Receipt``s and
inbound traffic through a callback that must never block.

Errors::

    ProviderError
    ├── ProviderTemporaryError   retry later (throttled, queue full, unbound); has retry_after
    └── ProviderPermanentError   the provider refused this message for good; carries the code
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ReceiptStatus(enum.StrEnum):
    """A receipt's outcome, mapped from the provider's dialect."""

    ENROUTE = "enroute"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        ReceiptStatus.DELIVERED,
        ReceiptStatus.UNDELIVERABLE,
        ReceiptStatus.EXPIRED,
        ReceiptStatus.REJECTED,
    }
)


@dataclass(frozen=True, slots=True)
class Submission:
    """One message to hand to a provider; the provider splits it into parts."""

    message_id: int
    destination: str  # E.164 with the leading "+"
    source: str  # sender id: alphanumeric, short code or E.164
    text: str
    expires_at: datetime | None = None
    want_receipt: bool = True


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The provider took every part; ``part_ids`` holds its id for each part, in order."""

    message_id: int
    part_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt as the provider sent it, already parsed."""

    provider: str
    provider_message_id: str
    status: ReceiptStatus
    error_code: str | None = None
    done_at: datetime | None = None


Ack = asyncio.Future[None]
ReceiptSink = Callable[[Receipt], Ack | None]
"""Called by a provider for every receipt; must return at once (it runs on the receive loop).

It may return a future: the provider then acknowledges the receipt to the SMSC only when
the future resolves (the receipt is durable), and refuses it with a temporary error if the
future fails, so that the SMSC delivers it again. A crash before that loses no receipt."""


@dataclass(frozen=True, slots=True)
class InboundPart:
    """A mobile-originated message, or one part of it, as a provider received it.

    SMPP providers pass the raw ``short_message`` (with its UDH when ``esm_class`` has
    0x40, or the message_payload) with its ``data_coding``, and ``sar`` = (reference,
    total, sequence) when the SMSC used SAR TLVs. HTTP providers pass the decoded ``text``
    of a whole message. The gateway joins the parts and decodes them.
    """

    provider: str
    source: str  # as the provider wrote it: digits, +digits or letters
    destination: str
    data_coding: int = 0
    esm_class: int = 0
    short_message: bytes = b""
    sar: tuple[int, int, int] | None = None
    text: str | None = None
    received_at: datetime | None = None


InboundSink = Callable[[InboundPart], Ack | None]
"""Called for every inbound part; like ``ReceiptSink``, it may return a future that defers
the provider's acknowledgement until the part is durable."""


@dataclass(frozen=True, slots=True)
class ProviderSnapshot:
    """Live state of one provider for the API and metrics (cheap: no IO)."""

    name: str
    kind: str  # "smpp" | "http"
    ready: bool
    binds_up: int
    binds_total: int
    in_flight: int
    window: int  # the sum of the current windows (adaptive) of the binds that are up
    window_max: int
    submitted: int = 0  # counters since start
    throttled: int = 0
    errors: int = 0
    malformed_pdus: int = 0  # PDUs (or provider callbacks) that could not be read
    binds: tuple[dict[str, object], ...] = ()  # per bind: label, up, in_flight, window, ...


class ProviderError(Exception):
    """A provider did not take a message."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class ProviderTemporaryError(ProviderError):
    """Try again after ``retry_after`` seconds (the provider may be slowing us down)."""

    def __init__(self, code: str, detail: str = "", retry_after: float = 1.0) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after


class ProviderPermanentError(ProviderError):
    """The provider refused the message for good; ``code`` is kept on the message."""


class Provider(Protocol):
    """A connection (or pool of connections) to one SMS provider."""

    name: str

    async def start(self) -> None:
        """Connect (bind); return once ready to submit or raise on bad credentials."""

    async def close(self) -> None:
        """Stop taking submissions, wait for outstanding responses briefly, unbind."""

    async def submit(self, submission: Submission) -> SubmitResult:
        """Send every part and wait for the provider's response to each."""

    def capacity(self) -> int:
        """How many more submissions could be in flight now (window room); 0 when down."""

    @property
    def ready(self) -> bool:
        """True while at least one connection is bound and usable."""

    def snapshot(self) -> ProviderSnapshot:
        """Live state: binds up, in flight, windows, counters."""
