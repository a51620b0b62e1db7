"""Audiences: saved queries over contacts, compiled to parameterised SQL (pure).

A query is a tree: a ``Group`` (``all`` = AND, ``any`` = OR) of ``Rule``s and nested
groups, at most ``MAX_DEPTH`` deep. A rule names a field from ``FIELDS`` (the whitelist:
field → SQL column and kind) and an operator from its kind's table in ``OPS``. Each
operator is one row of data: how its value is validated, how the value and today's date
become operands, the SQL template (``{c}`` is the whitelisted column, every value a
``%s`` parameter) and the same predicate in Python. ``compile_where`` renders the SQL;
``matches`` evaluates the Python predicates, the oracle the tests compare the SQL with.

SQL's NULL and Python's ``None`` agree because no operator is ever negated from outside:
every negative operator (``neq``, ``not_in``, ``none`` …) says in its own template what
it does with NULL, and a NULL that reaches AND/OR in a WHERE acts as false.

Relative dates ("signed up more than 30 days ago", "birthday in the next 7 days") are
turned into absolute operands from ``today`` at compile time, so they are parameters
like any other value and can use the indexes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

from gateway.core.numbers import InvalidNumber, to_e164

MAX_DEPTH = 4
MAX_RULES = 100
MAX_LIST = 1000
MAX_TEXT = 200
MAX_NUMBER = Decimal("1e15")
MAX_DAYS = 36600


class InvalidQuery(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message, self.field = message, field


@dataclass(frozen=True, slots=True)
class Rule:
    field: str
    op: str
    value: Any = None  # for field "custom", the pair (key, value)
    key: str | None = None  # the custom field's name, for field "custom"


@dataclass(frozen=True, slots=True)
class Group:
    match: Literal["all", "any"]
    rules: tuple[Rule | Group, ...]


AudienceQuery = Group
EVERYONE = Group("all", ())


@dataclass(frozen=True, slots=True)
class SqlWhere:
    sql: str
    params: tuple[Any, ...]

    def and_(self, other: SqlWhere) -> SqlWhere:
        return SqlWhere(f"({self.sql}) AND ({other.sql})", self.params + other.params)


REACHABLE = SqlWhere("c.subscribed AND c.consent", ())


# ---- fields --------------------------------------------------------------------------


class Kind(StrEnum):
    text = "text"
    phone = "phone"
    date = "date"
    birth = "birth"  # a date with birthday and age operators
    moment = "moment"
    number = "number"
    flag = "flag"
    tags = "tags"
    custom = "custom"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: Kind
    label: str


FIELDS: dict[str, FieldSpec] = {
    "phone": FieldSpec(Kind.phone, "Phone"),
    "first_name": FieldSpec(Kind.text, "First name"),
    "last_name": FieldSpec(Kind.text, "Last name"),
    "middle_name": FieldSpec(Kind.text, "Middle name"),
    "email": FieldSpec(Kind.text, "E-mail"),
    "city": FieldSpec(Kind.text, "City"),
    "region": FieldSpec(Kind.text, "Region"),
    "timezone": FieldSpec(Kind.text, "Time zone"),
    "gender": FieldSpec(Kind.text, "Gender (m/f)"),
    "source_site": FieldSpec(Kind.text, "Source site"),
    "consent_source": FieldSpec(Kind.text, "Consent source"),
    "operator": FieldSpec(Kind.text, "Operator"),
    "language": FieldSpec(Kind.text, "Language"),
    "loyalty_level": FieldSpec(Kind.text, "Loyalty level"),
    "external_id": FieldSpec(Kind.text, "CRM id"),
    "birth_date": FieldSpec(Kind.birth, "Birth date"),
    "signup_date": FieldSpec(Kind.date, "Signup date"),
    "consent_at": FieldSpec(Kind.moment, "Consent date"),
    "last_purchase_at": FieldSpec(Kind.moment, "Last purchase"),
    "last_activity_at": FieldSpec(Kind.moment, "Last activity"),
    "created_at": FieldSpec(Kind.moment, "Added"),
    "total_spend": FieldSpec(Kind.number, "Total spend"),
    "purchases": FieldSpec(Kind.number, "Purchases"),
    "subscribed": FieldSpec(Kind.flag, "Subscribed"),
    "consent": FieldSpec(Kind.flag, "Consent to marketing"),
    "tags": FieldSpec(Kind.tags, "Tags"),
    "custom": FieldSpec(Kind.custom, "Custom field"),
}


# ---- values: validated per shape, at a path ----------------------------------------------


def _text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_TEXT or "\x00" in raw:
        raise ValueError(f"must be text of 1 to {MAX_TEXT} characters")
    return raw


def _list(item: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    def parse(raw: Any) -> tuple[Any, ...]:
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LIST:
            raise ValueError(f"must be a list of 1 to {MAX_LIST} values")
        return tuple(dict.fromkeys(item(v) for v in raw))

    return parse


def _pair(item: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, Any]]:
    def parse(raw: Any) -> tuple[Any, Any]:
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("must be a pair [from, to]")
        low, high = item(raw[0]), item(raw[1])
        if low > high:
            raise ValueError("'from' is after 'to'")
        return low, high

    return parse


def _number(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("must be a number")
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not value.is_finite() or abs(value) >= MAX_NUMBER:
        raise ValueError("must be a finite number under 10^15")
    return value


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return raw

    return parse


def _date(raw: Any) -> date:
    try:
        value = date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None or not 1900 <= value.year <= 2100:
        raise ValueError("must be a date YYYY-MM-DD (1900–2100)")
    return value


def _phone(raw: Any) -> str:
    try:
        return to_e164(_text(raw), "RU")
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from None


def _prefix(raw: Any) -> str:
    if not isinstance(raw, str) or not re.fullmatch(r"\+?\d{1,15}", raw.strip()):
        raise ValueError("must be the first digits of a number, e.g. +7921")
    return "+" + raw.strip().lstrip("+")


def _tag(raw: Any) -> str:
    if not isinstance(raw, str) or not 1 <= len(raw) <= 64 or any(ord(ch) < 32 for ch in raw):
        raise ValueError("each tag must be text of 1 to 64 characters")
    return raw


def _scalar(raw: Any) -> str | int | float | bool:
    """A custom field's value for equality: text, number or yes/no, as in the JSON."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        _number(raw)
        return raw
    return _text(raw)


def _nothing(raw: Any) -> None:
    return None


VALUES: dict[str, Callable[[Any], Any]] = {
    "none": _nothing, "text": _text, "texts": _list(_text), "number": _number,
    "numbers": _pair(_number), "date": _date, "dates": _pair(_date),
    "days": _whole(0, MAX_DAYS), "birthdays": _whole(0, 366), "ages": _pair(_whole(0, 150)),
    "phone": _phone, "phones": _list(_phone), "prefix": _prefix, "scalar": _scalar,
    "tags": _list(_tag),
}  # fmt: skip


# ---- operators: value shape, operands, SQL, Python -----------------------------------------

Operands = tuple[Any, ...]
Test = Callable[[Any, Operands], bool]


@dataclass(frozen=True, slots=True)
class Op:
    label: str
    shape: str  # a key of VALUES: how the value is validated and how the page asks for it
    operands: Callable[[Any, date], Operands]
    sql: str
    test: Test
    params: Callable[[Operands], Operands] = lambda o: o


def _one(v: Any, today: date) -> Operands:
    return (v,)


def _both(v: tuple[Any, Any], today: date) -> Operands:
    return v


def _as_list(v: Any, today: date) -> Operands:
    return (list(v),)


def _none(v: Any, today: date) -> Operands:
    return ()


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(v: str, today: date) -> Operands:
    return (f"%{like_escape(v)}%",)


def _starts(v: str, today: date) -> Operands:
    return (f"{like_escape(v)}%",)


def like(value: str, pattern: str, fold: bool = True) -> bool:
    """SQL (I)LIKE in Python, with backslash escapes: the oracle of the SQL one."""
    parts = re.findall(r"\\.|%|_|[^\\%_]+", pattern, re.DOTALL)
    regex = "".join(
        ".*" if p == "%" else "." if p == "_" else re.escape(p[1] if p[0] == "\\" else p)
        for p in parts
    )
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None


def _present(a: Any, o: Operands) -> bool:
    return a is not None and a != ""


def _absent(a: Any, o: Operands) -> bool:
    return not _present(a, o)


_UPPER = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"


def fold(expr: str) -> str:
    """Case-folded SQL text, ASCII and Cyrillic, whatever the server's locale (a C-locale
    server's ``lower`` and ``ILIKE`` fold ASCII only)."""
    return f"translate(lower({expr}), '{_UPPER}', '{_UPPER.lower()}')"


_LIKE = f"{fold('{c}')} LIKE {fold('%s')}"
_NOT_LIKE = f"({{c}} IS NULL OR {fold('{c}')} NOT LIKE {fold('%s')})"

TEXT_OPS: dict[str, Op] = {
    "eq": Op("is", "text", _one, "{c} = %s", lambda a, o: a is not None and a == o[0]),
    "neq": Op("is not", "text", _one, "{c} IS DISTINCT FROM %s", lambda a, o: a != o[0]),
    "in": Op("is one of", "texts", _as_list, "{c} = ANY(%s)",
             lambda a, o: a is not None and a in o[0]),
    "not_in": Op("is none of", "texts", _as_list, "({c} IS NULL OR {c} <> ALL(%s))",
                 lambda a, o: a is None or a not in o[0]),
    "contains": Op("contains", "text", _contains, _LIKE,
                   lambda a, o: a is not None and like(a, o[0])),
    "not_contains": Op("does not contain", "text", _contains, _NOT_LIKE,
                       lambda a, o: a is None or not like(a, o[0])),
    "starts_with": Op("starts with", "text", _starts, _LIKE,
                      lambda a, o: a is not None and like(a, o[0])),
    "is_set": Op("is set", "none", _none, "({c} IS NOT NULL AND {c} <> '')", _present),
    "is_empty": Op("is empty", "none", _none, "({c} IS NULL OR {c} = '')", _absent),
}  # fmt: skip

PHONE_OPS: dict[str, Op] = {
    "eq": Op("is", "phone", _one, "{c} = %s", lambda a, o: a == o[0]),
    "in": Op("is one of", "phones", _as_list, "{c} = ANY(%s)", lambda a, o: a in o[0]),
    "starts_with": Op("starts with", "prefix", _starts, "{c} LIKE %s",
                      lambda a, o: a is not None and like(a, o[0], fold=False)),
}  # fmt: skip


def _lt(a: Any, o: Operands) -> bool:
    return a is not None and a < o[0]


def _le(a: Any, o: Operands) -> bool:
    return a is not None and a <= o[0]


def _gt(a: Any, o: Operands) -> bool:
    return a is not None and a > o[0]


def _ge(a: Any, o: Operands) -> bool:
    return a is not None and a >= o[0]


def _within(a: Any, o: Operands) -> bool:
    return a is not None and o[0] <= a <= o[1]


def _half_open(a: Any, o: Operands) -> bool:
    return a is not None and o[0] <= a < o[1]


def _null(a: Any, o: Operands) -> bool:
    return a is None


def _not_null(a: Any, o: Operands) -> bool:
    return a is not None


NUMBER_OPS: dict[str, Op] = {
    "eq": Op("=", "number", _one, "{c} = %s", lambda a, o: a is not None and a == o[0]),
    "neq": Op("≠", "number", _one, "{c} IS DISTINCT FROM %s", lambda a, o: a != o[0]),
    "gt": Op(">", "number", _one, "{c} > %s", _gt),
    "gte": Op("≥", "number", _one, "{c} >= %s", _ge),
    "lt": Op("<", "number", _one, "{c} < %s", _lt),
    "lte": Op("≤", "number", _one, "{c} <= %s", _le),
    "between": Op("between", "numbers", _both, "{c} BETWEEN %s AND %s", _within),
}


def _days_ago(v: int, today: date) -> Operands:
    return (today - timedelta(days=v),)


def _last_days(v: int, today: date) -> Operands:
    return (today - timedelta(days=v), today)


_EMPTY_OPS = {
    "is_set": Op("is set", "none", _none, "{c} IS NOT NULL", _not_null),
    "is_empty": Op("is empty", "none", _none, "{c} IS NULL", _null),
}

DATE_OPS: dict[str, Op] = {
    "before": Op("before", "date", _one, "{c} < %s", _lt),
    "after": Op("after", "date", _one, "{c} > %s", _gt),
    "between": Op("between", "dates", _both, "{c} BETWEEN %s AND %s", _within),
    "older_than_days": Op("more than N days ago", "days", _days_ago, "{c} < %s", _lt),
    "within_last_days": Op("in the last N days", "days", _last_days,
                           "{c} BETWEEN %s AND %s", _within),
    **_EMPTY_OPS,
}  # fmt: skip


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def birthday_keys(today: date, days: int) -> list[int]:
    """``month*100 + day`` of each of the next ``days`` days (today included); a 29 Feb
    birthday is celebrated on 28 Feb in a common year."""
    span = [today + timedelta(days=n) for n in range(min(days, 366) + 1)]
    keys = {d.month * 100 + d.day for d in span}
    if 228 in keys and not _leap(today.year if today.month <= 2 else today.year + 1):
        keys.add(229)
    return sorted(keys)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _birthdays(v: int, today: date) -> Operands:
    return (birthday_keys(today, v),)


def _ages(v: tuple[int, int], today: date) -> Operands:
    youngest, oldest = v
    return (_add_years(today, -oldest - 1) + timedelta(days=1), _add_years(today, -youngest))


BIRTH_OPS: dict[str, Op] = {
    **DATE_OPS,
    "birthday_within_days": Op(
        "birthday in the next N days", "birthdays", _birthdays,
        "c.birth_mmdd = ANY(%s)",
        lambda a, o: a is not None and a.month * 100 + a.day in o[0],
    ),
    "age_between": Op("age between", "ages", _ages,
                      "{c} BETWEEN %s AND %s", _within),
}  # fmt: skip


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _m_same(v: date, today: date) -> Operands:
    return (_midnight(v),)


def _m_after(v: date, today: date) -> Operands:
    return (_midnight(v + timedelta(days=1)),)


def _m_between(v: tuple[date, date], today: date) -> Operands:
    return (_midnight(v[0]), _midnight(v[1] + timedelta(days=1)))


def _m_days_ago(v: int, today: date) -> Operands:
    return (_midnight(today - timedelta(days=v)),)


def _m_last_days(v: int, today: date) -> Operands:
    return (_midnight(today - timedelta(days=v)), _midnight(today + timedelta(days=1)))


_HALF_OPEN = "({c} >= %s AND {c} < %s)"
MOMENT_OPS: dict[str, Op] = {  # days are UTC days
    "before": Op("before", "date", _m_same, "{c} < %s", _lt),
    "after": Op("after", "date", _m_after, "{c} >= %s", _ge),
    "between": Op("between", "dates", _m_between, _HALF_OPEN, _half_open),
    "older_than_days": Op("more than N days ago", "days", _m_days_ago, "{c} < %s", _lt),
    "within_last_days": Op("in the last N days", "days", _m_last_days, _HALF_OPEN, _half_open),
    **_EMPTY_OPS,
}

FLAG_OPS: dict[str, Op] = {
    "is_true": Op("yes", "none", _none, "{c} IS TRUE", lambda a, o: a is True),
    "is_false": Op("no", "none", _none, "{c} IS NOT TRUE", lambda a, o: a is not True),
}

TAG_OPS: dict[str, Op] = {
    "any": Op("has any of", "tags", _as_list, "{c} && %s::text[]",
              lambda a, o: bool(set(a or ()) & set(o[0]))),
    "all": Op("has all of", "tags", _as_list, "{c} @> %s::text[]",
              lambda a, o: set(o[0]) <= set(a or ())),
    "none": Op("has none of", "tags", _as_list, "NOT ({c} && %s::text[])",
               lambda a, o: not set(a or ()) & set(o[0])),
    "is_empty": Op("has no tags", "none", _none, "cardinality({c}) = 0", lambda a, o: not a),
    "is_set": Op("has tags", "none", _none, "cardinality({c}) > 0", lambda a, o: bool(a)),
}  # fmt: skip


# Custom fields: the rule's key is the first operand; the test sees the whole ``custom``.
def _json_number(x: Any) -> Decimal | None:
    ok = isinstance(x, int | float) and not isinstance(x, bool)
    return Decimal(str(x)) if ok else None


def _json_equal(x: Any, v: Any) -> bool:
    if isinstance(v, bool) or isinstance(x, bool):
        return x is v
    if isinstance(v, str) or isinstance(x, str):
        return bool(x == v)
    return _json_number(x) is not None and _json_number(x) == _json_number(v)


def _custom(test: Test) -> Test:
    def on_custom(a: Any, o: Operands) -> bool:
        return test((a or {}).get(o[0]), o[1:])

    return on_custom


def _numeric(test: Test) -> Test:
    return _custom(lambda x, o: test(_json_number(x), o))


def _textual(test: Test) -> Test:
    return _custom(lambda x, o: test(x if isinstance(x, str) else None, o))


def _keyed(make: Callable[[Any, date], Operands]) -> Callable[[Any, date], Operands]:
    def operands(v: Any, today: date) -> Operands:
        key, value = v
        return (key, *make(value, today))

    return operands


def _contains_json(o: Operands) -> Operands:
    return (json.dumps({o[0]: o[1]}, ensure_ascii=False),)


def _key_twice(o: Operands) -> Operands:
    return (o[0], *o)


_NUM = "(CASE WHEN jsonb_typeof(c.custom->%s) = 'number' THEN (c.custom->>%s)::numeric END)"
_STR = "(CASE WHEN jsonb_typeof(c.custom->%s) = 'string' THEN c.custom->>%s END)"
_TYPE = "coalesce(jsonb_typeof(c.custom->%s), 'null')"


def _custom_op(op: Op, sql: str, test: Test) -> Op:
    params = _key_twice if sql.count("c.custom->") == 2 else (lambda o: o)
    return Op(op.label, op.shape, _keyed(op.operands), sql, test, params)


CUSTOM_OPS: dict[str, Op] = {
    "eq": Op("is", "scalar", _keyed(_one), "c.custom @> %s::jsonb",
             _custom(lambda x, o: _json_equal(x, o[0])), _contains_json),
    "neq": Op("is not", "scalar", _keyed(_one), "NOT (c.custom @> %s::jsonb)",
              _custom(lambda x, o: not _json_equal(x, o[0])), _contains_json),
    **{name: _custom_op(NUMBER_OPS[name], f"{_NUM} {sign} %s", _numeric(NUMBER_OPS[name].test))
       for name, sign in (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))},
    "between": _custom_op(NUMBER_OPS["between"], f"{_NUM} BETWEEN %s AND %s", _numeric(_within)),
    "contains": _custom_op(TEXT_OPS["contains"], f"{fold(_STR)} LIKE {fold('%s')}",
                           _textual(TEXT_OPS["contains"].test)),
    "is_set": _custom_op(_EMPTY_OPS["is_set"], f"{_TYPE} <> 'null'", _custom(_not_null)),
    "is_empty": _custom_op(_EMPTY_OPS["is_empty"], f"{_TYPE} = 'null'", _custom(_null)),
}  # fmt: skip

OPS: dict[Kind, dict[str, Op]] = {
    Kind.text: TEXT_OPS,
    Kind.phone: PHONE_OPS,
    Kind.date: DATE_OPS,
    Kind.birth: BIRTH_OPS,
    Kind.moment: MOMENT_OPS,
    Kind.number: NUMBER_OPS,
    Kind.flag: FLAG_OPS,
    Kind.tags: TAG_OPS,
    Kind.custom: CUSTOM_OPS,
}


def op_of(rule: Rule) -> Op:
    return OPS[FIELDS[rule.field].kind][rule.op]


# ---- parsing -----------------------------------------------------------------------------


def parse_query(data: Any) -> AudienceQuery:
    """A query from its JSON form; raises InvalidQuery naming the path (``rules[2].value``)."""
    counter = [0]
    return _group(data, "", 1, counter)


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _group(data: Any, path: str, depth: int, counter: list[int]) -> Group:
    if not isinstance(data, dict):
        raise InvalidQuery("must be an object {match, rules}", path or "query")
    if depth > MAX_DEPTH:
        raise InvalidQuery(f"groups nest at most {MAX_DEPTH} deep", path)
    match = data.get("match", "all")
    if match not in ("all", "any"):
        raise InvalidQuery("must be 'all' or 'any'", _at(path, "match"))
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise InvalidQuery("must be a list", _at(path, "rules"))
    items = tuple(
        _item(item, f"{_at(path, 'rules')}[{i}]", depth, counter) for i, item in enumerate(rules)
    )
    return Group(match, items)


def _item(data: Any, path: str, depth: int, counter: list[int]) -> Rule | Group:
    counter[0] += 1  # groups count too: a million empty groups is no query either
    if counter[0] > MAX_RULES:
        raise InvalidQuery(f"at most {MAX_RULES} rules and groups", path)
    if isinstance(data, dict) and "rules" in data:
        return _group(data, path, depth + 1, counter)
    return _rule(data, path)


def _rule(data: Any, path: str) -> Rule:
    if not isinstance(data, dict):
        raise InvalidQuery("must be an object {field, op, value}", path)
    name = data.get("field")
    if not isinstance(name, str) or name not in FIELDS:
        raise InvalidQuery("unknown field", _at(path, "field"))
    ops = OPS[FIELDS[name].kind]
    op = data.get("op")
    if not isinstance(op, str) or op not in ops:
        raise InvalidQuery(f"unknown operator for {name}", _at(path, "op"))
    key = _key(data.get("key"), path) if name == "custom" else None
    try:
        value = VALUES[ops[op].shape](data.get("value"))
    except ValueError as exc:
        raise InvalidQuery(str(exc), _at(path, "value")) from None
    return Rule(name, op, (key, value) if key is not None else value, key)


def _key(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not re.fullmatch(r"[\w.\-]{1,64}", raw):
        raise InvalidQuery(
            "a custom field's name: 1 to 64 letters, digits, _ . -", _at(path, "key")
        )
    return raw


def query_to_json(query: Group) -> dict[str, Any]:
    """The JSON form ``parse_query`` reads back into an equal query."""
    return {"match": query.match, "rules": [_item_json(item) for item in query.rules]}


def _item_json(item: Rule | Group) -> dict[str, Any]:
    if isinstance(item, Group):
        return query_to_json(item)
    value = item.value[1] if item.key is not None else item.value
    out: dict[str, Any] = {"field": item.field, "op": item.op}
    if value is not None:
        out["value"] = _value_json(value)
    if item.key is not None:
        out["key"] = item.key
    return out


def _value_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_value_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


# ---- compiling and evaluating ----------------------------------------------------------------


def compile_where(query: Group, today: date) -> SqlWhere:
    """SQL over alias ``c`` (``admin.contacts c``); values only ever as parameters."""
    params: list[Any] = []
    sql = _compile(query, today, params)
    return SqlWhere(sql, tuple(params))


def _compile(item: Rule | Group, today: date, params: list[Any]) -> str:
    if isinstance(item, Rule):
        op = op_of(item)
        params.extend(op.params(op.operands(item.value, today)))
        return "(" + op.sql.replace("{c}", f"c.{item.field}") + ")"
    if not item.rules:
        return "TRUE" if item.match == "all" else "FALSE"
    joiner = " AND " if item.match == "all" else " OR "
    return "(" + joiner.join(_compile(i, today, params) for i in item.rules) + ")"


def matches(query: Group, contact: Mapping[str, Any], today: date) -> bool:
    """Whether ``contact`` (column → value, as the database returns them) is in the audience."""
    results = (_matches(item, contact, today) for item in query.rules)
    return all(results) if query.match == "all" else any(results)


def _matches(item: Rule | Group, contact: Mapping[str, Any], today: date) -> bool:
    if isinstance(item, Group):
        return matches(item, contact, today)
    op = op_of(item)
    return op.test(contact.get(item.field), op.operands(item.value, today))


def catalog() -> list[dict[str, Any]]:
    """Fields and their operators for the builder page: labels and value shapes."""
    return [
        {"field": name, "label": spec.label, "kind": spec.kind.value, "ops": _ops_json(spec.kind)}
        for name, spec in FIELDS.items()
    ]


def _ops_json(kind: Kind) -> list[dict[str, str]]:
    return [{"op": name, "label": op.label, "shape": op.shape} for name, op in OPS[kind].items()]
