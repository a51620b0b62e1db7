"""Masking personal data for log lines (152-FZ): one definition for every layer.

Numbers keep their country code and last two digits; texts only their length.
``find_phones`` recognises the numbers a log line must not hold: E.164 (``+7 921 123-45-67``
with any spaces, dashes or brackets) and Russian national forms (``8 (921) 123-45-67``,
``79211234567``: eleven digits starting 7 or 8). Longer or shorter digit runs are left
alone, so 19-digit message ids, epoch timestamps, ports and pids are not flagged; a digit
run glued to letters (a hex id) is not a number either. ``scrub`` masks what
``find_phones`` finds, for text that may quote a number (a provider's error, a URL path).

``providers/`` imports nothing of ours above it, so this lives here and
``gateway.core.masking`` re-exports it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator


def mask_phone(number: str) -> str:
    """Keep the country code and last two digits: ``+79211234567`` → ``+792*******67``."""
    if len(number) <= 5:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


def mask_text(text: str) -> str:
    """Only the length of a message text is ever logged."""
    return f"<{len(text)} chars>"


_SEP = r"[ \t\-()]{0,3}"
_E164 = re.compile(rf"(?<![\w+])\+\d(?:{_SEP}\d){{7,14}}(?![\w])")
_NATIONAL = re.compile(rf"(?<![\w+])[78]{_SEP}(?:\d{_SEP}){{9}}\d(?![\w])")
_DIGITS = re.compile(r"\d")


def find_phones(line: str) -> Iterator[re.Match[str]]:
    """Every phone number written whole in ``line``."""
    for pattern in (_E164, _NATIONAL):
        for match in pattern.finditer(line):
            if _phone_like(match.group()):
                yield match


def _phone_like(candidate: str) -> bool:
    digits = len(_DIGITS.findall(candidate))
    if candidate.startswith("+"):
        return 8 <= digits <= 15
    return digits == 11


def scrub(line: str) -> str:
    """``line`` with every whole phone number masked."""
    spans = sorted({m.span() for m in find_phones(line)})
    out: list[str] = []
    end = 0
    for start, stop in spans:
        if start < end:
            continue
        out += [line[end:start], mask_phone(_compact(line[start:stop]))]
        end = stop
    return "".join(out) + line[end:]


def _compact(number: str) -> str:
    return ("+" if number.startswith("+") else "") + "".join(_DIGITS.findall(number))
