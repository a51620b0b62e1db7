"""Array literals (gateway/adapters/pg_arrays.py) read by a real PostgreSQL.

Each property checks both that the literal gives back exactly the list, and that it
means the same to PostgreSQL as psycopg2's own list adaptation that it replaced (the
text forms compared, so that a numeric's scale counts too)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.adapters.pg_arrays import (
    bool_array,
    float_array,
    int_array,
    numeric_array,
    text_array,
    timestamptz_array,
)
from gateway.embedded import ServerUrls
from tests.unit.test_pg_arrays import texts

EXAMPLES = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

offsets = st.integers(-(15 * 3600 + 59 * 60 + 59), 15 * 3600 + 59 * 60 + 59).map(
    lambda s: timezone(timedelta(seconds=s))
)
stamps = st.datetimes(datetime(1900, 1, 1), datetime(9000, 1, 1), timezones=offsets)
decimals = st.builds(
    lambda digits, exponent: Decimal(digits).scaleb(exponent),
    st.integers(-(10**30), 10**30),
    st.integers(-30, 10),
)


@pytest.fixture(scope="module")
def cur(server_urls: ServerUrls) -> Iterator[Any]:
    conn = psycopg2.connect(server_urls.database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def check(cur: Any, cast: str, encode: Callable[[Any], str], values: Sequence[Any]) -> None:
    cur.execute(
        f"SELECT %s::{cast}[], (%s::{cast}[])::text, (%s::{cast}[])::text",
        (encode(values), encode(values), list(values)),
    )
    got, new_text, old_text = cur.fetchone()
    assert got == list(values)
    assert new_text == old_text


@EXAMPLES
@given(values=texts)
def test_texts(cur: Any, values: list[str | None]) -> None:
    check(cur, "text", text_array, values)


@EXAMPLES
@given(values=st.lists(st.none() | st.integers(-(2**63), 2**63 - 1)))
def test_bigints(cur: Any, values: list[int | None]) -> None:
    check(cur, "bigint", int_array, values)


@EXAMPLES
@given(values=st.lists(st.none() | st.integers(-(2**15), 2**15 - 1)))
def test_smallints(cur: Any, values: list[int | None]) -> None:
    check(cur, "smallint", int_array, values)


@EXAMPLES
@given(values=st.lists(st.none() | stamps))
def test_timestamps(cur: Any, values: list[datetime | None]) -> None:
    check(cur, "timestamptz", timestamptz_array, values)


@EXAMPLES
@given(values=st.lists(st.none() | st.datetimes(datetime(1900, 1, 1), datetime(9000, 1, 1))))
def test_naive_timestamps_mean_what_they_meant(cur: Any, values: list[datetime | None]) -> None:
    """A naive datetime is read in the session's zone, by the literal as by psycopg2."""
    cur.execute("SELECT %s::timestamptz[] = %s::timestamptz[]", (timestamptz_array(values), values))
    assert cur.fetchone()[0] is True  # array equality takes NULL elements as equal


@EXAMPLES
@given(values=st.lists(st.none() | decimals))
def test_numerics(cur: Any, values: list[Decimal | None]) -> None:
    check(cur, "numeric", numeric_array, values)


@EXAMPLES
@given(values=st.lists(st.none() | st.floats(allow_nan=False) | st.integers(-(2**40), 2**40)))
def test_floats(cur: Any, values: list[float | None]) -> None:
    # Compared with psycopg2's lists by value: those turned -0.0 into 0, the literal keeps it.
    cur.execute(
        "SELECT %s::float8[], %s::float8[] = %s::float8[]", (float_array(values),) * 2 + (values,)
    )
    got, same = cur.fetchone()
    assert [None if v is None else (v, math.copysign(1, v)) for v in got] == [
        None if v is None else (v, math.copysign(1, v)) for v in values
    ]
    assert same is True


@EXAMPLES
@given(values=st.lists(st.none() | st.booleans()))
def test_bools(cur: Any, values: list[bool | None]) -> None:
    check(cur, "bool", bool_array, values)


def test_backslashes_survive_without_standard_conforming_strings(cur: Any) -> None:
    values = ["c:\\dir", '\\"', "\\\\", None, ""]
    cur.execute("SET standard_conforming_strings = off")
    try:
        check(cur, "text", text_array, values)
    finally:
        cur.execute("SET standard_conforming_strings = on")


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800"])
def test_what_psycopg2_refused_is_still_refused(cur: Any, bad: str) -> None:
    with pytest.raises(ValueError):
        cur.execute("SELECT %s::text[]", ([bad, None],))
    with pytest.raises(ValueError):
        cur.execute("SELECT %s::text[]", (text_array([bad, None]),))
