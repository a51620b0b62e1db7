"""Personal data never reaches a log line whole (152-FZ): numbers and texts are masked."""

from __future__ import annotations


def mask_phone(number: str) -> str:
    """Keep the country code and last two digits: ``+79211234567`` → ``+792*******67``."""
    if len(number) <= 5:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


def mask_text(text: str) -> str:
    """Only the length of a message text is ever logged."""
    return f"<{len(text)} chars>"
