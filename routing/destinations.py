"""Where a number goes: its country and its mobile operator, for matching routes.

Theory of operation. ``phonenumbers`` knows the country of a number and the operator its
range was allocated to (carrier data: prefixes of at most 8 digits for +7). In Russia
numbers have been portable since 2013, so the allocation is wrong for ported numbers: a
table of them ({E.164: operator}, e.g. from an MNP database export) overrides it per full
number. Operator names are compared by a canonical key (case, spaces and punctuation
dropped, aliases applied: "Tele2" and "Теле2" are the "t2" that phonenumbers says), so a
config may use the names people use.

The hot path must cost a few microseconds, and ``phonenumbers.parse`` plus its carrier
lookup costs ~25. So the operator is looked up in phonenumbers' carrier table directly
(longest prefix first: the same data and the same rule as ``carrier.name_for_number``),
and the country, which for a valid number depends only on its first digits (enough to
tell apart the regions that share a calling code: +7 RU / KZ, +1 US / CA...) and on its
length, is memoised per (leading digits, length): a campaign to a million Russian numbers
parses a few dozen. Numbers are assumed valid E.164 (the API checks them); one that does
not parse has no country and matches by prefix or operator only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers.carrierdata import CARRIER_DATA, CARRIER_LONGEST_PREFIX

# Names people use for the Russian operators, mapped to the key of phonenumbers' name.
BUILTIN_ALIASES: Mapping[str, str] = {
    "tele2": "t2",
    "теле2": "t2",
    "мтс": "mts",
    "mobiletelesystems": "mts",
    "билайн": "beeline",
    "vimpelcom": "beeline",
    "вымпелком": "beeline",
    "мегафон": "megafon",
    "mtt": "multiregionaltransittelecommtt",
    "мтт": "multiregionaltransittelecommtt",
}

_MEMO_LIMIT = 100_000  # (leading digits, length) pairs: far more than numbering plans have
_COUNTRY_DIGITS = 7  # calling code (≤ 3) + 4: what tells regions sharing a code apart
_NOT_KEY = re.compile(r"[\W_]+")


def operator_key(name: str, aliases: Mapping[str, str] = BUILTIN_ALIASES) -> str:
    """The canonical key of an operator name: "MegaFon" → "megafon", "Tele2" → "t2"."""
    key = _NOT_KEY.sub("", name.casefold())
    return aliases.get(key, key)


@dataclass(frozen=True, slots=True)
class Destination:
    number: str  # E.164, as given
    country: str | None  # ISO 3166 alpha-2, e.g. "RU"
    operator: str | None  # canonical operator key, e.g. "mts"
    ported: bool = False  # the operator came from the ported-number table


@dataclass(frozen=True, slots=True)
class Resolver:
    """Country and operator of numbers, with the ported-number table applied."""

    ported: Mapping[str, str] = field(default_factory=dict)  # E.164 → canonical operator key
    aliases: Mapping[str, str] = field(default_factory=lambda: BUILTIN_ALIASES)
    # A memo of a pure function (leading digits, length → region), not state.
    _memo: dict[tuple[str, int], str] = field(default_factory=dict, compare=False, repr=False)
    _names: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def resolve(self, number: str) -> Destination:
        moved = self.ported.get(number)
        if moved is not None:
            return Destination(number, self._country(number), moved, ported=True)
        return Destination(number, self._country(number), self._operator(number))

    def _country(self, number: str) -> str | None:
        key = (number[: _COUNTRY_DIGITS + 1], len(number))
        country = self._memo.get(key)
        if country is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            country = self._memo[key] = region(number)
        return country or None

    def _operator(self, number: str) -> str | None:
        name = allocated_operator(number)
        if name is None:
            return None
        key = self._names.get(name)
        if key is None:
            key = self._names[name] = operator_key(name, self.aliases)
        return key


def region(number: str) -> str:
    """The ISO region of a number by phonenumbers, or "" (slow: ~20 µs; memoised above)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def allocated_operator(number: str) -> str | None:
    """The name of the operator the number's range was allocated to, if known."""
    digits = number[1:]
    for length in range(min(CARRIER_LONGEST_PREFIX, len(digits)), 0, -1):
        names = CARRIER_DATA.get(digits[:length])
        if names:
            return names.get("en") or next(iter(names.values()))
    return None
