"""Phone numbers to E.164 (pure: ``phonenumbers`` is metadata, no IO)."""

from __future__ import annotations

import phonenumbers


class InvalidNumber(ValueError):
    pass


def to_e164(raw: str, default_region: str) -> str:
    """``8 921 123-45-67`` with region RU → ``+79211234567``; raises InvalidNumber."""
    candidate = raw.strip()
    if not candidate or len(candidate) > 32:
        raise InvalidNumber("not a phone number")
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        parsed = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(str(exc)) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """The ISO region of an E.164 number, e.g. ``RU``."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
