"""Hypothesis strategies for audience queries and random contacts that they can match.

Values come from small pools shared by queries and contacts (so that queries select some
contacts and not always none), mixed with arbitrary text over an alphabet that holds
SQL's special characters (quote, backslash, % and _) and Cyrillic in both cases.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from admin.core.audience import FIELDS, MAX_DEPTH, OPS
from admin.core.contacts import Contact

ALPHABET = "abzAZ01 'ёЁжЖ%_\\\"-;"
WORDS = ["Москва", "москва", "Анна", "анна", "ann%", "a_b", "O'Brien", "x\\y", "Ёлка", "b"]
TAGS = ["vip", "new", "Спорт", "a%b", "x_y"]
KEYS = ["club", "score", "note"]
PHONES = ["+79211234567", "+79161112233", "+74951234567", "+73432123456", "+491701234567"]
PREFIXES = ["+7", "+7921", "+7495", "+49", "+1"]
TODAY = date(2026, 2, 27)

texts = st.one_of(st.sampled_from(WORDS), st.text(ALPHABET, min_size=1, max_size=6))
numbers = st.one_of(st.integers(-5, 3000), st.sampled_from(["12.50", "0", "99.99", "1500"]))
dates = st.dates(date(1950, 1, 1), date(2030, 12, 31)).map(date.isoformat)


def _pair(items: st.SearchStrategy[Any], key: Any = None) -> st.SearchStrategy[list[Any]]:
    return st.lists(items, min_size=2, max_size=2).map(lambda p: sorted(p, key=key))


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "none": st.none(),
    "text": texts,
    "texts": st.lists(texts, min_size=1, max_size=4),
    "number": numbers,
    "numbers": _pair(numbers, key=Decimal),
    "date": dates,
    "dates": _pair(dates),
    "days": st.integers(0, 4000),
    "birthdays": st.integers(0, 366),
    "ages": _pair(st.integers(0, 100)),
    "phone": st.sampled_from(PHONES),
    "phones": st.lists(st.sampled_from(PHONES), min_size=1, max_size=3),
    "prefix": st.sampled_from(PREFIXES),
    "scalar": st.one_of(texts, st.integers(-5, 50), st.booleans(), st.sampled_from([1.5, 2.0])),
    "tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
}

FIELD_OPS = [(field, op) for field, spec in FIELDS.items() for op in OPS[spec.kind]]


@st.composite
def rules(draw: st.DrawFn, values: dict[str, st.SearchStrategy[Any]] = VALUES) -> dict[str, Any]:
    field, op = draw(st.sampled_from(FIELD_OPS))
    shape = OPS[FIELDS[field].kind][op].shape
    rule: dict[str, Any] = {"field": field, "op": op}
    value = draw(values[shape])
    if value is not None:
        rule["value"] = value
    if field == "custom":
        rule["key"] = draw(st.sampled_from(KEYS))
    return rule


def queries(
    depth: int = 1, values: dict[str, st.SearchStrategy[Any]] = VALUES
) -> st.SearchStrategy[dict[str, Any]]:
    leaf = rules(values)
    items = leaf if depth >= MAX_DEPTH else st.one_of(leaf, leaf, queries(depth + 1, values))
    return st.fixed_dictionaries(
        {"match": st.sampled_from(["all", "any"]), "rules": st.lists(items, max_size=4)}
    )


# ---- contacts ----------------------------------------------------------------------------


def _maybe(rng: random.Random, value: Any, p: float = 0.75) -> Any:
    return value if rng.random() < p else None


def _moment(rng: random.Random) -> datetime:
    return datetime.combine(TODAY, datetime.min.time(), UTC) - timedelta(
        seconds=rng.randint(-86400 * 30, 86400 * 3000)
    )


def _day(rng: random.Random, low: int, high: int) -> date:
    return TODAY - timedelta(days=rng.randint(low, high))


def _custom(rng: random.Random) -> dict[str, Any]:
    pool: list[Any] = [1, 2, 5, 12, -3, 1.5, 2.0, "vip", "Москва", "a_b", True, False, None]
    return {k: rng.choice(pool) for k in KEYS if rng.random() < 0.6}


def random_contact(rng: random.Random, n: int) -> Contact:
    """Contact ``n`` (its phone is unique by ``n``) with random attributes."""

    def text() -> str | None:
        return _maybe(rng, rng.choice([*WORDS, "", "Zed"]))  # type: ignore[no-any-return]

    return Contact(
        phone=rng.choice(PHONES[:4])[:-4] + f"{n:04d}" if n < 10000 else f"+7999{n:07d}",
        timezone=rng.choice(["Europe/Moscow", "Asia/Yekaterinburg"]),
        first_name=text(), last_name=text(), middle_name=text(), email=text(), city=text(),
        region=text(), gender=_maybe(rng, rng.choice("mf")), source_site=text(),
        consent_source=text(), operator=text(), language=text(), loyalty_level=text(),
        external_id=text(),
        birth_date=_maybe(rng, _day(rng, 0, 365 * 80)),
        signup_date=_maybe(rng, _day(rng, -10, 4000)),
        tags=tuple(rng.sample(TAGS, rng.randint(0, 3))),
        subscribed=_maybe(rng, rng.random() < 0.8), consent=_maybe(rng, rng.random() < 0.5),
        consent_at=_maybe(rng, _moment(rng)), last_purchase_at=_maybe(rng, _moment(rng)),
        last_activity_at=_maybe(rng, _moment(rng)),
        total_spend=_maybe(rng, Decimal(rng.randint(0, 500000)) / 100),
        purchases=_maybe(rng, rng.randint(0, 40)), custom=_custom(rng),
    )  # fmt: skip
