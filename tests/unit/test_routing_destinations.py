"""routing.destinations: country and operator of +7 numbers, ported overrides, aliases."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import carrier

from routing.destinations import Destination, Resolver, allocated_operator, operator_key


@pytest.mark.parametrize(
    ("number", "country", "operator"),
    [
        ("+79010812345", "RU", "mts"),
        ("+79031234567", "RU", "beeline"),
        ("+79261234567", "RU", "megafon"),
        ("+79771234567", "RU", "t2"),
        ("+375291234567", "BY", "velcom"),
        ("+77011234567", "KZ", "kcellactiv"),
        ("+12025550100", "US", None),
        ("+74951234567", "RU", None),  # a Moscow landline: no mobile operator
    ],
)
def test_known_numbers(number: str, country: str, operator: str | None) -> None:
    assert Resolver().resolve(number) == Destination(number, country, operator)


def test_ported_numbers_override_the_allocation() -> None:
    resolver = Resolver({"+79031234567": "mts"})
    assert resolver.resolve("+79031234567") == Destination("+79031234567", "RU", "mts", True)
    assert resolver.resolve("+79031234568").operator == "beeline"


def test_unparseable_numbers_have_no_country() -> None:
    assert Resolver().resolve("+999").country is None


@pytest.mark.parametrize(
    ("name", "key"),
    [("MTS", "mts"), ("МТС", "mts"), ("Tele2", "t2"), ("Теле2", "t2"), ("T2", "t2"),
     ("MegaFon", "megafon"), ("Мегафон", "megafon"), ("Beeline", "beeline"),
     ("Билайн", "beeline"), ("Sberbank-Telecom", "sberbanktelecom")],
)  # fmt: skip
def test_operator_names_people_use(name: str, key: str) -> None:
    assert operator_key(name) == key


RU_MOBILE = st.builds(
    lambda code, rest: f"+79{code:02d}{rest:07d}",
    st.integers(0, 99),
    st.integers(0, 10**7 - 1),
)
KZ_MOBILE = st.builds(lambda rest: f"+770{rest:08d}", st.integers(0, 10**8 - 1))


@given(st.lists(RU_MOBILE | KZ_MOBILE, min_size=1, max_size=30))
def test_memoised_resolution_agrees_with_phonenumbers(numbers: list[str]) -> None:
    resolver = Resolver()
    for number in numbers:
        parsed = phonenumbers.parse(number)
        got = resolver.resolve(number)
        assert got.country == (phonenumbers.region_code_for_number(parsed) or None)
        name = carrier.name_for_number(parsed, "en")
        if name:
            assert got.operator == operator_key(name)


def test_allocated_operator_is_phonenumbers_name() -> None:
    assert allocated_operator("+79031234567") == "Beeline"
    assert allocated_operator("+10") is None
