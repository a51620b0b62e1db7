"""Erasure of one person's data: how their number is recognised in stored text.

A number is stored in E.164 (``+79211234567``) but may appear in free text or in keys
without the plus; it is recognised only as a whole run of digits, so that a longer number
or a message id that happens to contain the same digits is never taken for it. Pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from gateway.core.masking import mask_phone


@dataclass(frozen=True, slots=True)
class Subject:
    """The person to erase: their number in E.164."""

    number: str

    @property
    def digits(self) -> str:
        return self.number.lstrip("+")

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"(?<!\d){re.escape(self.digits)}(?!\d)")

    @property
    def masked(self) -> str:
        return mask_phone(self.number)

    def found_in(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the number masked (for the audit's reason)."""
        return self.pattern.sub(self.masked.lstrip("+"), text)


def without_subject(value: str, subject: Subject) -> str | None:
    """A stored value rewritten without the subject's data: a JSON list keeps its other
    items; anything else holding the number goes whole (None)."""
    if not subject.found_in(value):
        return value
    try:
        items = json.loads(value)
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    kept = [item for item in items if not subject.found_in(json.dumps(item, ensure_ascii=False))]
    return json.dumps(kept, ensure_ascii=False) if kept else None


def rewrite_fields(fields: dict[str, str], subject: Subject) -> dict[str, str] | None:
    """A stream entry's fields without the subject; None when nothing worth keeping is left."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        kept = without_subject(value, subject)
        if kept is None:
            return None
        out[key] = kept
    return out
