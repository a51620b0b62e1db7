"""The gateway's message types (frozen, no IO)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gateway.core.lifecycle import State


class Priority(enum.IntEnum):
    """Lower value is served first; the stream names are the labels."""

    OTP = 0
    TRANSACTIONAL = 1
    BULK = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Priority:
        return cls[label.upper()]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated request to send one message, before it has an id."""

    client_id: int
    destination: str  # E.164
    sender: str
    text: str
    priority: Priority
    encoding: str
    parts: int
    client_ref: str | None = None
    send_at: datetime | None = None
    expires_at: datetime | None = None
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the API answers for one accepted message."""

    id: int
    message: NewMessage
    duplicate: bool = False
    state: State = State.ACCEPTED


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message claimed by a dispatcher, ready to route and submit."""

    id: int
    client_id: int
    destination: str
    sender: str
    text: str
    priority: Priority
    parts: int
    attempts: int
    expires_at: datetime | None
