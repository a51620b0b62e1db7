"""The audience query builder: parsing with paths, SQL with values only as parameters, and
the Python oracle on hand-picked cases (the SQL is compared with it in test_contact_store)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admin.core import audience
from admin.core.audience import (
    FIELDS,
    OPS,
    Group,
    InvalidQuery,
    Rule,
    birthday_keys,
    compile_where,
    fold,
    like,
    like_escape,
    matches,
    parse_query,
    query_to_json,
)
from tests.admin.audience_gen import ALPHABET, TODAY, VALUES, queries

SENTINEL = "§"  # in no SQL the compiler writes
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def q(*rules: dict[str, Any], match: str = "all") -> Group:
    return parse_query({"match": match, "rules": list(rules)})


def one(field: str, op: str, value: Any = None, **extra: Any) -> Group:
    return q({"field": field, "op": op, "value": value, **extra})


def test_at_least_twenty_criteria() -> None:
    criteria = {(f, op) for f, spec in FIELDS.items() for op in OPS[spec.kind]}
    assert len(criteria) > 100
    kinds = {spec.kind for spec in FIELDS.values()}
    assert len(kinds) == len(audience.Kind)


# ---- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "query"),
        ({"match": "some"}, "match"),
        ({"rules": {}}, "rules"),
        ({"rules": [{"field": "nope", "op": "eq"}]}, "rules[0].field"),
        ({"rules": [{"field": "region", "op": "gt", "value": "x"}]}, "rules[0].op"),
        ({"rules": [1, {"field": "region", "op": "eq", "value": ""}]}, "rules[0]"),
        ({"rules": [{"field": "city", "op": "eq", "value": "a"},
                    {"field": "city", "op": "eq", "value": ""}]}, "rules[1].value"),
        ({"rules": [{"rules": [{"field": "purchases", "op": "gt", "value": "abc"}]}]},
         "rules[0].rules[0].value"),
        ({"rules": [{"field": "purchases", "op": "between", "value": [5, 1]}]}, "rules[0].value"),
        ({"rules": [{"field": "total_spend", "op": "gt", "value": "NaN"}]}, "rules[0].value"),
        ({"rules": [{"field": "total_spend", "op": "gt", "value": True}]}, "rules[0].value"),
        ({"rules": [{"field": "signup_date", "op": "after", "value": "31.12.2020"}]},
         "rules[0].value"),
        ({"rules": [{"field": "signup_date", "op": "older_than_days", "value": -1}]},
         "rules[0].value"),
        ({"rules": [{"field": "region", "op": "in", "value": []}]}, "rules[0].value"),
        ({"rules": [{"field": "region", "op": "eq", "value": "a\x00b"}]}, "rules[0].value"),
        ({"rules": [{"field": "phone", "op": "eq", "value": "12"}]}, "rules[0].value"),
        ({"rules": [{"field": "phone", "op": "starts_with", "value": "79'"}]}, "rules[0].value"),
        ({"rules": [{"field": "custom", "op": "eq", "value": 1}]}, "rules[0].key"),
        ({"rules": [{"field": "custom", "key": "a b", "op": "eq", "value": 1}]}, "rules[0].key"),
        ({"rules": [{"field": "tags", "op": "any", "value": ["x" * 65]}]}, "rules[0].value"),
    ],
)  # fmt: skip
def test_errors_name_the_path(data: Any, field: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse_query(data)
    assert caught.value.field == field


def test_depth_and_size_are_limited() -> None:
    deep: dict[str, Any] = {"rules": []}
    for _ in range(audience.MAX_DEPTH):
        deep = {"rules": [deep]}
    with pytest.raises(InvalidQuery, match="nest"):
        parse_query(deep)
    many = [{"field": "tags", "op": "is_set"}] * (audience.MAX_RULES + 1)
    with pytest.raises(InvalidQuery, match="at most"):
        parse_query({"rules": many})


@given(queries())
@settings(PROPERTY, max_examples=150)
def test_json_round_trip(data: dict[str, Any]) -> None:
    query = parse_query(data)
    assert parse_query(query_to_json(query)) == query


# ---- SQL: values only as parameters --------------------------------------------------------

MARKED = {
    **VALUES,
    "text": st.text(ALPHABET, max_size=8).map(lambda t: SENTINEL + t),
    "texts": st.lists(st.text(ALPHABET, max_size=5).map(lambda t: SENTINEL + t), min_size=1),
    "number": st.integers(10**7, 10**9),
    "scalar": st.text(ALPHABET, max_size=5).map(lambda t: SENTINEL + t),
    "tags": st.lists(st.text("abc'%", max_size=5).map(lambda t: SENTINEL + t), min_size=1),
}
IDENTIFIERS = re.compile(r"c\.(\w+)")


@given(queries(values=MARKED), st.dates(date(2000, 1, 1), date(2040, 1, 1)))
@settings(PROPERTY, max_examples=200)
def test_no_value_reaches_the_sql_text(data: dict[str, Any], today: date) -> None:
    where = compile_where(parse_query(data), today)
    assert SENTINEL not in where.sql
    assert not re.search(r"\d{7}", where.sql)  # no marked number, no date
    assert where.sql.count("%s") == len(where.params)
    assert set(IDENTIFIERS.findall(where.sql)) <= {*FIELDS, "birth_mmdd"}


@given(queries(), st.data())
@settings(PROPERTY, max_examples=200)
def test_the_sql_depends_on_the_shape_only(data: dict[str, Any], draw: st.DataObject) -> None:
    """The same fields and operators with other values compile to the same SQL text."""
    other = _revalued(data, draw)
    assert (
        compile_where(parse_query(data), TODAY).sql == compile_where(parse_query(other), TODAY).sql
    )


def _revalued(data: dict[str, Any], draw: st.DataObject) -> dict[str, Any]:
    if "rules" in data:
        return {**data, "rules": [_revalued(item, draw) for item in data["rules"]]}
    shape = OPS[FIELDS[data["field"]].kind][data["op"]].shape
    return {**data, "value": draw.draw(VALUES[shape])}


def test_empty_groups() -> None:
    assert compile_where(q(), TODAY).sql == "TRUE"
    assert compile_where(q(match="any"), TODAY).sql == "FALSE"
    assert matches(q(), {}, TODAY) and not matches(q(match="any"), {}, TODAY)


def test_compiled_shapes() -> None:
    where = compile_where(
        q({"field": "region", "op": "in", "value": ["Москва", "СПб"]},
          {"field": "first_name", "op": "contains", "value": "50%_off\\"},
          {"field": "custom", "key": "club", "op": "gt", "value": 5}),
        TODAY,
    )  # fmt: skip
    assert where.params == (["Москва", "СПб"], "%50\\%\\_off\\\\%", "club", "club", Decimal(5))
    assert "c.region = ANY(%s)" in where.sql and fold("c.first_name") in where.sql


def test_migration_indexes_the_folded_expression() -> None:
    sql = Path(audience.__file__).parents[1] / "adapters/migrations/0002_contacts.sql"
    assert fold("first_name").replace("'", "''") in sql.read_text()


# ---- the oracle on chosen cases -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [("50% off", "%50\\%%", True), ("500 off", "%50\\%%", False), ("a_b", "a\\_b", True),
     ("axb", "a\\_b", False), ("axb", "a_b", True), ("Ёлка", "ёл%", True),
     ("back\\slash", "%\\\\%", True), ("line\nbreak", "line%", True)],
)  # fmt: skip
def test_like(value: str, pattern: str, expected: bool) -> None:
    assert like(value, pattern) is expected


@given(st.text(ALPHABET), st.text(ALPHABET))
@PROPERTY
def test_escaped_like_is_substring(value: str, needle: str) -> None:
    assert like(value, f"%{like_escape(needle)}%") is (needle.lower() in value.lower())


def test_birthday_window_wraps_the_year_and_keeps_29_february() -> None:
    assert birthday_keys(date(2026, 12, 30), 3) == [101, 102, 1230, 1231]
    assert 229 in birthday_keys(date(2027, 2, 27), 2)  # 2027 is common: 29 Feb on the 28th
    assert 229 not in birthday_keys(date(2028, 2, 27), 1)  # 2028 is a leap year
    assert birthday_keys(date(2028, 2, 27), 2) == [227, 228, 229]
    feb29 = {"birth_date": date(1992, 2, 29)}
    assert matches(one("birth_date", "birthday_within_days", 0), feb29, date(2027, 2, 28))


def test_age_bounds() -> None:
    adults = one("birth_date", "age_between", [18, 30])
    assert matches(adults, {"birth_date": date(2008, 2, 27)}, TODAY)  # 18 today
    assert not matches(adults, {"birth_date": date(2008, 2, 28)}, TODAY)  # 18 tomorrow
    assert matches(adults, {"birth_date": date(1995, 2, 28)}, TODAY)  # 30, 31 tomorrow
    assert not matches(adults, {"birth_date": date(1995, 2, 27)}, TODAY)  # 31 today


def test_relative_dates() -> None:
    old = one("signup_date", "older_than_days", 30)
    assert matches(old, {"signup_date": date(2026, 1, 27)}, TODAY)
    assert not matches(old, {"signup_date": date(2026, 1, 28)}, TODAY)
    recent = one("last_purchase_at", "within_last_days", 7)
    assert matches(recent, {"last_purchase_at": datetime(2026, 2, 20, tzinfo=UTC)}, TODAY)
    assert not matches(recent, {"last_purchase_at": datetime(2026, 2, 19, 23, tzinfo=UTC)}, TODAY)
    assert not matches(recent, {"last_purchase_at": None}, TODAY)


def test_nulls_and_negatives() -> None:
    assert matches(one("region", "neq", "Москва"), {"region": None}, TODAY)
    assert matches(one("region", "not_in", ["Москва"]), {"region": None}, TODAY)
    assert not matches(one("region", "in", ["Москва"]), {"region": None}, TODAY)
    assert matches(one("city", "is_empty"), {"city": ""}, TODAY)
    assert matches(one("consent", "is_false"), {"consent": None}, TODAY)
    assert matches(one("tags", "none", ["vip"]), {"tags": ["new"]}, TODAY)
    assert not matches(one("tags", "all", ["vip", "new"]), {"tags": ["vip"]}, TODAY)


def test_custom_fields_compare_by_json_type() -> None:
    contact = {"custom": {"club": 5, "flag": True, "name": "Анна", "n": "5"}}
    assert matches(one("custom", "eq", 5, key="club"), contact, TODAY)
    assert matches(one("custom", "eq", 5.0, key="club"), contact, TODAY)
    assert not matches(one("custom", "eq", 1, key="flag"), contact, TODAY)  # True is not 1
    assert not matches(one("custom", "gt", 1, key="n"), contact, TODAY)  # text is no number
    assert matches(one("custom", "contains", "анн", key="name"), contact, TODAY)
    assert matches(one("custom", "is_empty", key="missing"), contact, TODAY)


def test_phone_values_are_normalised() -> None:
    rule = one("phone", "eq", "8 (921) 123-45-67").rules[0]
    assert isinstance(rule, Rule) and rule.value == "+79211234567"
    assert one("phone", "starts_with", "7921").rules[0] == Rule("phone", "starts_with", "+7921")


def test_catalog_lists_every_field() -> None:
    listed = audience.catalog()
    assert [f["field"] for f in listed] == list(FIELDS)
    assert all(op["shape"] in audience.VALUES for f in listed for op in f["ops"])


def test_core_is_pure() -> None:
    code = (
        "import sys, admin.core.audience, admin.core.contacts, admin.core.timezones, "
        "admin.core.csv_import; print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    io = ("asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket", "uvloop")
    assert not [m for m in loaded if m.split(".")[0] in io]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    | st.sampled_from(["all", "any", "region", "in", "custom", "tags", "between", "2020-01-01"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["match", "rules", "field", "op", "value", "key"]), inner),
    max_leaves=12,
)  # fmt: skip


@given(_JSON)
@settings(PROPERTY, max_examples=300)
def test_any_json_parses_or_names_a_path(data: Any) -> None:
    try:
        query = parse_query(data)
    except InvalidQuery as exc:
        assert exc.field
    else:
        compile_where(query, TODAY)
