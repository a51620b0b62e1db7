"""Array literals for PostgreSQL (gateway/adapters/pg_arrays.py): pure.

The round trip through a real PostgreSQL is tests/integration/test_pg_arrays.py; here a
small reader of the array grammar checks the text shape, with no server."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.pg_arrays import (
    bool_array,
    float_array,
    int_array,
    numeric_array,
    text_array,
    timestamptz_array,
)

TRICKY = ["", "NULL", "null", '"', "\\", "{", "}", ",", " ", " a ", '\\"', "Привет", "😀", "'"]
texts = st.lists(
    st.none()
    | st.sampled_from(TRICKY)
    | st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))
)
_ELEMENT = re.compile(r'"((?:[^"\\]|\\.)*)"|(NULL)')


def read_text_array(literal: str) -> list[str | None]:
    """The elements of a one-dimensional text[] literal whose elements are quoted or NULL."""
    assert literal[0] == "{" and literal[-1] == "}"
    body, elements, at = literal[1:-1], [], 0
    while at < len(body):
        match = _ELEMENT.match(body, at)
        assert match is not None, body[at:]
        quoted = match.group(1)
        elements.append(None if quoted is None else re.sub(r"\\(.)", r"\1", quoted, flags=re.S))
        at = match.end()
        if at < len(body):
            assert body[at] == ","
            at += 1
    return elements


@given(texts)
def test_text_elements_read_back_exactly(values: list[str | None]) -> None:
    assert read_text_array(text_array(values)) == values


def test_text_quotes_every_element_and_leaves_null_bare() -> None:
    assert text_array(["", None, 'a"b', "c\\d", "NULL"]) == r'{"",NULL,"a\"b","c\\d","NULL"}'
    assert text_array([]) == "{}" and text_array([None]) == "{NULL}" and text_array([""]) == '{""}'


@pytest.mark.parametrize(
    "values", [["a\x00b"], ["a", "b\x00"], ["\x00", None], ["\ud800"], ["a\ud800", None]]
)
def test_what_postgresql_cannot_hold_is_refused_not_split(values: list[str | None]) -> None:
    # The one-pass join must not take a NUL in a text for a separator, nor a lone
    # surrogate for its mark of None: psycopg2 refused both as elements.
    with pytest.raises(ValueError):
        text_array(values)


@given(st.lists(st.none() | st.integers(-(2**63), 2**63 - 1)))
def test_ints_read_back(values: list[int | None]) -> None:
    elements = int_array(values)[1:-1].split(",") if values else []
    assert [None if e == "NULL" else int(e) for e in elements] == values


def test_int_array_refuses_what_is_not_an_int() -> None:
    with pytest.raises(TypeError):
        int_array(["1},{2"])  # type: ignore[list-item]
    assert int_array([True, False]) == "{1,0}"


def test_other_scalars() -> None:
    assert numeric_array([Decimal("1.50"), None, Decimal("-0.35")]) == "{1.50,NULL,-0.35}"
    assert float_array([1.5, 5, None, float("inf")]) == "{1.5,5.0,NULL,inf}"
    assert bool_array([True, False, None]) == "{t,f,NULL}"
    at = datetime(2026, 12, 7, 8, 59, 1, 5, tzinfo=UTC)
    assert timestamptz_array([at, None]) == "{2026-12-07T08:59:01.000005+00:00,NULL}"
    assert timestamptz_array([]) == numeric_array([]) == bool_array([]) == "{}"
