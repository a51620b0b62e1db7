"""PostgreSQL array literals (``'{…}'``) built in one go, for the batched statements.

Why: psycopg2 adapts a Python list element by element through adapter objects into
``ARRAY[…]`` text (quoting each str through the connection); for the 1000-row ``unnest``
batches that was a fifth of the gateway's CPU. These functions build the array's text
form instead, which the statement casts as before (``%s::bigint[]``), so psycopg2 quotes
one string. Pure: no IO.

Text elements are always double-quoted, ``\\`` and ``"`` escaped by a backslash, so that
``""`` stays an empty string and ``"NULL"`` a word; an unquoted ``NULL`` is SQL NULL.
The literal then goes through psycopg2's ordinary string quoting, which keeps the
backslashes whatever ``standard_conforming_strings`` says. Text that psycopg2 refused
as an element (a NUL, a lone surrogate) is refused here with a ValueError too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

EMPTY = "{}"
# Stands for None in text_array's one-pass join: a lone surrogate, which no text psycopg2
# can send holds (its UTF-8 encoding refuses it).
_NULL = "\ud800"
_BOOLS = {True: "t", False: "f"}


def _join(values: Sequence[Any], render: Callable[[Any], str]) -> str:
    if None in values:
        return "{" + ",".join("NULL" if v is None else render(v) for v in values) + "}"
    return "{" + ",".join(map(render, values)) + "}"


def int_array(values: Sequence[int | None]) -> str:
    """bigint[] / int[] / smallint[]; ``int.__repr__`` refuses anything but an int."""
    return _join(values, int.__repr__)


def text_array(values: Sequence[str | None]) -> str:
    """text[]: every element quoted, NULL for None.

    Joins on NUL (never in PostgreSQL text), escapes the whole at once, then turns the
    NULs into separators and the quoted None marks into NULL: a few C-speed passes
    instead of one call per element."""
    if not values:
        return EMPTY
    nulls = values.count(None)
    items = [_NULL if v is None else v for v in values] if nulls else values
    joined = "\x00".join(items)  # type: ignore[arg-type]
    if joined.count("\x00") != len(values) - 1 or joined.count(_NULL) != nulls:
        raise ValueError("a PostgreSQL text cannot hold NUL (0x00) or a lone surrogate")
    escaped = joined.replace("\\", "\\\\").replace('"', '\\"')
    literal = '{"' + escaped.replace("\x00", '","') + '"}'
    return literal.replace(f'"{_NULL}"', "NULL") if nulls else literal


def numeric_array(values: Sequence[Decimal | int | None]) -> str:
    """numeric[]: ``str`` of a Decimal is exact, scale kept (``1.50`` stays ``1.50``)."""
    return _join(values, str)


def float_array(values: Sequence[float | None]) -> str:
    """float8[]: ``repr`` of a float reads back as the same float (``inf``, ``-0.0`` too)."""
    return _join(values, _float)


def _float(value: float) -> str:
    return repr(float(value))


def bool_array(values: Sequence[bool | None]) -> str:
    return _join(values, _BOOLS.__getitem__)


def timestamptz_array(values: Sequence[datetime | None]) -> str:
    """timestamptz[]: ISO 8601 with its offset (no space, comma or quote to escape); a
    naive datetime is read in the session's time zone, as psycopg2 sent it before."""
    return _join(values, datetime.isoformat)
