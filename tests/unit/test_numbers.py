"""The Russian mobile fast path of ``to_e164`` answers exactly as ``phonenumbers`` does."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.numbers import (
    _RU_MOBILE_PATTERN,
    InvalidNumber,
    _candidate,
    _russian_mobile,
    parsed_e164,
    to_e164,
)

NATIONAL = st.from_regex(r"9[0-9]{9}|9300[0-9]{6}", fullmatch=True)  # 9300…: irregular
FORMS = ("+7{}", "7{}", "8{}", "{}", "007{}", " +7{} ", "\t8{}\n")
REGIONS = st.sampled_from(("RU", "KZ", "BY", "US", "DE"))


def outcome(convert: Callable[[str, str], str], raw: str, region: str) -> str:
    """The E.164 string, or the error's text: both must agree."""
    try:
        return convert(raw, region)
    except InvalidNumber as exc:
        return f"InvalidNumber: {exc}"


def test_the_mobile_pattern_is_phonenumbers_validity_for_every_prefix() -> None:
    """Validity of a 9XX number depends on its first six digits; one random tail each."""
    rng, mobile = random.Random(7), re.compile(_RU_MOBILE_PATTERN)
    for prefix in range(900_000, 1_000_000):
        national = f"{prefix}{rng.randrange(10_000):04d}"
        number = phonenumbers.PhoneNumber(country_code=7, national_number=int(national))
        assert bool(mobile.fullmatch(national)) == phonenumbers.is_valid_number(number)


@settings(max_examples=500)
@given(NATIONAL, st.sampled_from(FORMS), REGIONS)
def test_every_form_agrees_with_phonenumbers(national: str, form: str, region: str) -> None:
    raw = form.format(national)
    assert outcome(to_e164, raw, region) == outcome(parsed_e164, raw, region)


@pytest.mark.parametrize(
    "raw",
    ["+79211234567", "79211234567", "89211234567", "9211234567", "0079211234567"],
)
def test_the_fast_forms_in_russia(raw: str) -> None:
    assert _russian_mobile(_candidate(raw), "RU") == to_e164(raw, "RU") == "+79211234567"


def test_only_the_plus_form_is_russian_elsewhere() -> None:
    assert to_e164("+79211234567", "US") == "+79211234567"
    assert outcome(to_e164, "79211234567", "KZ") == outcome(parsed_e164, "79211234567", "KZ")


DIGITS_AND_MORE = st.text(alphabet="0123456789+-() 789٩\u00a0x", max_size=20)


@given(DIGITS_AND_MORE, REGIONS)
def test_any_other_input_is_answered_as_phonenumbers_does(raw: str, region: str) -> None:
    assert outcome(to_e164, raw, region) == outcome(parsed_e164, raw, region)


@pytest.mark.parametrize("raw", ["+79300012345", "89300012345", "+7 (921) 123-45-67", "", "12"])
def test_near_misses_and_other_forms_fall_back(raw: str) -> None:
    assert outcome(to_e164, raw, "RU") == outcome(parsed_e164, raw, "RU")
