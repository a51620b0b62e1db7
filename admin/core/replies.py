"""Replies from contacts, read off the gateway's inbound stream. Pure.

An inbound entry (gateway/services/inbound.py) holds a JSON list of ``message.inbound``
payloads. The admin keeps who answered, when, and whether it was an opt-out or opt-in
keyword the gateway recognised; never the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Reply:
    inbound_id: int
    phone: str  # E.164, as the gateway normalised it
    at: datetime
    opt_out: bool
    opt_in: bool


def parse_inbound_entry(fields: Mapping[Any, Any]) -> tuple[list[Reply], int]:
    """The replies of one stream entry and how many items were unreadable (skipped)."""
    raw = fields.get(b"messages", fields.get("messages"))
    try:
        items = json.loads(raw) if isinstance(raw, bytes | str) else None
    except ValueError:
        items = None
    if not isinstance(items, list):
        return [], 1
    replies = [r for r in map(_reply, items) if r is not None]
    return replies, len(items) - len(replies)


def _reply(item: Any) -> Reply | None:
    try:
        data = item["data"]
        action = data.get("action")
        return Reply(
            inbound_id=int(data["id"]),
            phone=str(data["from"]),
            at=datetime.fromisoformat(data["received_at"]),
            opt_out=action == "opt_out",
            opt_in=action == "opt_in",
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
