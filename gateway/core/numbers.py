"""Phone numbers to E.164 (pure: ``phonenumbers`` is metadata, no IO).

``phonenumbers.parse`` costs ~18 µs a number, most of an accepted message's validation.
The everyday form — a Russian mobile number as ``+79…``, ``79…``, ``89…`` or ``9…`` in
plain ASCII digits — is recognised by one regular expression built on phonenumbers' own
pattern for Russian mobiles (a match ⇔ ``is_valid_number``: tests/unit/test_numbers.py
checks every prefix, and every form against ``phonenumbers.parse``). Anything else,
including a number that pattern refuses, goes through ``phonenumbers``, so errors and
odd forms are answered exactly as before.
"""

from __future__ import annotations

import re

import phonenumbers


class InvalidNumber(ValueError):
    pass


def _ru_mobile_pattern() -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("RU")
    mobile = metadata.mobile if metadata is not None else None
    pattern = mobile.national_number_pattern if mobile is not None else None
    return pattern or "(?!)"  # no metadata: never the fast path


_RU_MOBILE_PATTERN = _ru_mobile_pattern()
# The prefix, then ten digits from 9 (the domain the tests check) that phonenumbers'
# pattern calls a mobile. ASCII: ``\d`` must not match ``٩``, which phonenumbers reads.
_RU_MOBILE = re.compile(rf"(\+7|7|8)?(?=9[0-9]{{9}}$)({_RU_MOBILE_PATTERN})", re.ASCII)


def to_e164(raw: str, default_region: str) -> str:
    """``8 921 123-45-67`` with region RU → ``+79211234567``; raises InvalidNumber."""
    candidate = _candidate(raw)
    return _russian_mobile(candidate, default_region) or _parsed(candidate, default_region)


def parsed_e164(raw: str, default_region: str) -> str:
    """``to_e164`` through ``phonenumbers`` alone, whatever the form (the reference)."""
    return _parsed(_candidate(raw), default_region)


def _candidate(raw: str) -> str:
    candidate = raw.strip()
    if not candidate or len(candidate) > 32:
        raise InvalidNumber("not a phone number")
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    return candidate


def _russian_mobile(candidate: str, default_region: str) -> str | None:
    """``+7 9XX…`` in any region, or ``7 9XX…``, ``8 9XX…``, ``9XX…`` in RU, when it is a
    valid mobile; None for any other form (left to ``phonenumbers``)."""
    match = _RU_MOBILE.fullmatch(candidate)
    if match is None or (match[1] != "+7" and default_region != "RU"):
        return None
    return "+7" + match[2]


def _parsed(candidate: str, default_region: str) -> str:
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
