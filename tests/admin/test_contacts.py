"""Contact records, CSV headers and streaming, time zones from numbers (all pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admin.core.contacts import (
    InvalidContact,
    map_columns,
    normalise_header,
    parse_contact,
    row_record,
)
from admin.core.csv_import import ContactsCsv, CsvError, CsvFeed
from admin.core.timezones import DEFAULT_ZONE, russian_zone, russian_zones, timezone_for

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- time zones ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+74951234567", "Europe/Moscow"), ("+74991234567", "Europe/Moscow"),
        ("+78121234567", "Europe/Moscow"), ("+74012123456", "Europe/Kaliningrad"),
        ("+78462123456", "Europe/Samara"), ("+73432123456", "Asia/Yekaterinburg"),
        ("+73472123456", "Asia/Yekaterinburg"), ("+73812123456", "Asia/Omsk"),
        ("+73832123456", "Asia/Novosibirsk"), ("+73912123456", "Asia/Krasnoyarsk"),
        ("+73952123456", "Asia/Irkutsk"), ("+74112123456", "Asia/Yakutsk"),
        ("+74232123456", "Asia/Vladivostok"), ("+74132123456", "Asia/Magadan"),
        ("+74152123456", "Asia/Kamchatka"), ("+79221234567", "Asia/Yekaterinburg"),
        ("+79131234567", "Asia/Novosibirsk"), ("+79241234567", "Asia/Vladivostok"),
        ("+79031234567", DEFAULT_ZONE), ("+79161234567", "Europe/Moscow"),
        ("+491701234567", "Europe/Berlin"), ("+12025550123", "America/New_York"),
        ("+77012345678", "Asia/Almaty"), ("garbage", DEFAULT_ZONE),
    ],
)  # fmt: skip
def test_zone_of_a_number(number: str, zone: str) -> None:
    assert timezone_for(number) == zone


def test_the_table_covers_russias_eleven_offsets() -> None:
    winter = datetime(2026, 1, 15, 12, tzinfo=UTC)
    offsets = {winter.astimezone(ZoneInfo(z)).utcoffset() for z in russian_zones()}
    assert len(offsets) == 11  # UTC+2 … UTC+12


def test_unknown_code_is_moscow_and_longest_prefix_wins() -> None:
    assert russian_zone("9001234567") == DEFAULT_ZONE
    assert russian_zone("") == DEFAULT_ZONE


# ---- one record ------------------------------------------------------------------------------


def test_a_full_csv_row() -> None:
    contact = parse_contact(
        {
            "phone": "8 (921) 123-45-67", "first_name": " Анна ", "gender": "Ж",
            "birth_date": "29.02.1992", "signup_date": "2024-05-01", "tags": "vip; new, vip|Спорт",
            "subscribed": "да", "consent": "нет", "consent_at": "01.03.2024 10:30",
            "total_spend": "1 234,50 ₽", "purchases": "7", "email": "Anna@Example.COM",
            "last_purchase_at": "2025-01-02T03:04:05Z", "language": "RU", "custom": '{"club": 5}',
        }
    )  # fmt: skip
    assert contact.phone == "+79211234567" and contact.first_name == "Анна"
    assert contact.gender == "f" and contact.birth_date == date(1992, 2, 29)
    assert contact.tags == ("vip", "new", "Спорт")
    assert contact.subscribed is True and contact.consent is False
    assert contact.consent_at == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    assert contact.total_spend == Decimal("1234.50") and contact.purchases == 7
    assert contact.email == "anna@example.com" and contact.language == "ru"
    assert contact.custom == {"club": 5}
    assert contact.timezone == "Europe/Moscow" and contact.timezone_derived


def test_json_values_and_given_zone() -> None:
    contact = parse_contact(
        {"phone": 79131234567, "subscribed": False, "tags": ["a", "b"], "total_spend": 10.5,
         "purchases": 3, "timezone": "Asia/Omsk", "custom": {"x": [1, 2]}}
    )  # fmt: skip
    assert contact.subscribed is False and contact.tags == ("a", "b")
    assert contact.timezone == "Asia/Omsk" and not contact.timezone_derived
    assert contact.total_spend == Decimal("10.50")


def test_empty_values_are_none() -> None:
    contact = parse_contact({"phone": "+79211234567", "first_name": "", "subscribed": " "})
    assert contact.first_name is None and contact.subscribed is None and contact.tags == ()


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({}, "phone"), ({"phone": "123"}, "phone"), ({"phone": True}, "phone"),
        ({"phone": "+79211234567", "nmae": "x"}, "nmae"),
        ({"phone": "+79211234567", "birth_date": "31.02.1990"}, "birth_date"),
        ({"phone": "+79211234567", "birth_date": "1800-01-01"}, "birth_date"),
        ({"phone": "+79211234567", "subscribed": "может"}, "subscribed"),
        ({"phone": "+79211234567", "gender": "x"}, "gender"),
        ({"phone": "+79211234567", "total_spend": "много"}, "total_spend"),
        ({"phone": "+79211234567", "total_spend": "-5"}, "total_spend"),
        ({"phone": "+79211234567", "total_spend": "NaN"}, "total_spend"),
        ({"phone": "+79211234567", "purchases": "2.5"}, "purchases"),
        ({"phone": "+79211234567", "purchases": 2.5}, "purchases"),
        ({"phone": "+79211234567", "timezone": "Mars/Olympus"}, "timezone"),
        ({"phone": "+79211234567", "email": "not-an-email"}, "email"),
        ({"phone": "+79211234567", "custom": "[1]"}, "custom"),
        ({"phone": "+79211234567", "custom": "{"}, "custom"),
        ({"phone": "+79211234567", "custom": {"a": "\x00"}}, "custom"),
        ({"phone": "+79211234567", "first_name": "a\x00"}, "first_name"),
        ({"phone": "+79211234567", "first_name": "x" * 201}, "first_name"),
        ({"phone": "+79211234567", "first_name": ["x"]}, "first_name"),
        ({"phone": "+79211234567", "tags": ["ok", "bad\ttag"]}, "tags"),
        ({"phone": "+79211234567", "last_activity_at": "вчера"}, "last_activity_at"),
    ],
)  # fmt: skip
def test_errors_name_the_field(record: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidContact) as caught:
        parse_contact(record)
    assert caught.value.field == field


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "phone",
                "first_name",
                "birth_date",
                "tags",
                "subscribed",
                "total_spend",
                "purchases",
                "custom",
                "consent_at",
                "gender",
                "timezone",
            ]
        ),
        st.one_of(
            st.text(max_size=30),
            st.integers(),
            st.floats(),
            st.booleans(),
            st.none(),
            st.lists(st.text(max_size=5)),
        ),
    )
)
@settings(PROPERTY, max_examples=200)
def test_any_record_parses_or_names_a_field(record: dict[str, Any]) -> None:
    try:
        parse_contact(record)
    except InvalidContact as exc:
        assert exc.field in record or exc.field == "phone"


# ---- CSV headers -----------------------------------------------------------------------------


def test_russian_headers_map_and_unknown_ones_become_custom() -> None:
    header = ["\ufeffТелефон", "Имя", "Фамилия", "Дата рождения", "Пол", "Теги", "Согласие",
              "Карта клуба", "E-mail", "Город"]  # fmt: skip
    assert map_columns(header) == (
        "phone", "first_name", "last_name", "birth_date", "gender", "tags", "consent",
        "custom.карта_клуба", "email", "city",
    )  # fmt: skip
    assert normalise_header("  Дата  рождения. ") == "дата_рождения"


def test_header_errors() -> None:
    with pytest.raises(InvalidContact, match="no phone"):
        map_columns(["Имя", "Фамилия"])
    with pytest.raises(InvalidContact, match="two columns"):
        map_columns(["phone", "Телефон"])


def test_row_record_folds_custom_columns() -> None:
    columns = map_columns(["phone", "Карта", "custom", "Баллы", "Код", "Рейтинг"])
    record = row_record(columns, ["+79211234567", "gold", '{"a": 1}', "120", "007", "4,5"])
    assert parse_contact(record).custom == {
        "a": 1, "карта": "gold", "баллы": 120, "код": "007", "рейтинг": 4.5
    }  # fmt: skip


# ---- CSV streaming ---------------------------------------------------------------------------

SAMPLE = (
    "Телефон;Имя;Заметка\r\n"
    '89211234567;Анна;"две\r\nстроки; и ""кавычки"""\r\n'
    "\r\n"
    "12;Плохой;x\r\n"
    "+79161112233;Борис;\r\n"
)


def _feed_in_pieces(data: bytes, size: int) -> ContactsCsv:
    parser = ContactsCsv()
    for i in range(0, len(data), size):
        parser.feed(data[i : i + size])
    parser.feed(b"", final=True)
    return parser


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251"])
@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_chunks_of_any_size_give_the_same_rows(encoding: str, size: int) -> None:
    parser = _feed_in_pieces(SAMPLE.encode(encoding), size)
    assert [(line, c.phone) for line, c in parser.contacts] == [
        (2, "+79211234567"), (6, "+79161112233")
    ]  # fmt: skip
    assert parser.contacts[0][1].custom == {"заметка": 'две\r\nстроки; и "кавычки"'}
    assert [(e.line, e.field) for e in parser.errors] == [(5, "phone")]
    assert parser.rows == 3


def test_comma_files() -> None:
    parser = _feed_in_pieces(b'phone,first_name\n+79211234567,"Ann, Jr"\n', 4)
    assert parser.contacts[0][1].first_name == "Ann, Jr"
    with pytest.raises(CsvError, match="line 2"):
        _feed_in_pieces(b'phone\n"+7921\n', 100)


def test_broken_quote_is_reported() -> None:
    with pytest.raises(CsvError, match="never closed"):
        _feed_in_pieces(b'phone,first_name\n+79211234567,"Ann\n', 4)


def test_empty_and_headerless_files() -> None:
    with pytest.raises(CsvError, match="empty"):
        _feed_in_pieces(b"", 10)
    with pytest.raises(CsvError, match="phone"):
        _feed_in_pieces(b"name;city\nx;y\n", 10)


def test_utf8_that_breaks_later_is_refused() -> None:
    parser = ContactsCsv()
    parser.feed(("phone;Имя\n" + "+79211234567;Анна\n" * 4000).encode())
    with pytest.raises(CsvError, match="UTF-8"):
        parser.feed("+79211234567;Анна\n".encode("cp1251"))


@given(st.lists(st.lists(st.text("ab;,\"\n\r x", max_size=6), min_size=2, max_size=2),
                max_size=8), st.integers(1, 20))  # fmt: skip
@PROPERTY
def test_any_text_is_split_like_csv_reader(rows: list[list[str]], size: int) -> None:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows([["phone", "note"], *rows])
    data = out.getvalue().encode()
    feed, got = CsvFeed(), []
    for i in range(0, len(data), size):
        got += feed.feed(data[i : i + size])
    got += feed.feed(b"", final=True)
    expected = [r for r in csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=";")]
    assert [r.cells for r in got] == [r for r in expected if r]


@given(
    st.sampled_from(["+7", "8", "7", "+7 (", "8-"]),
    st.text("0123456789", min_size=10, max_size=10),
    st.sampled_from(["RU", "KZ", "DE"]),
)
@settings(PROPERTY, max_examples=200)
def test_the_russian_fast_path_agrees_with_to_e164(prefix: str, digits: str, region: str) -> None:
    from gateway.core.numbers import InvalidNumber, to_e164

    raw = prefix + digits
    try:
        expected: str | None = to_e164(raw, region)
    except InvalidNumber:
        expected = None
    try:
        got: str | None = parse_contact({"phone": raw}, region).phone
    except InvalidContact:
        got = None
    assert got == expected
