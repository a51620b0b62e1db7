"""Request validation: every error names its field; good input is normalised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.message import Priority
from gateway.core.validation import Context, Invalid, parse_message

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CTX = Context(client_id=1, now=NOW, default_region="RU", default_sender="Shop")


def parse(**fields: Any) -> Any:
    return parse_message({"to": "+79211234567", "text": "hi", **fields}, CTX)


def field_of(**fields: Any) -> str:
    with pytest.raises(Invalid) as info:
        parse(**fields)
    return info.value.error.field


def test_russian_number_normalised_to_e164() -> None:
    assert parse(to="8 921 123-45-67").destination == "+79211234567"


def test_cyrillic_text_is_ucs2_with_parts() -> None:
    message = parse(text="Ваш код подтверждения: 4821. Никому его не сообщайте." * 2)
    assert message.encoding == "ucs2" and message.parts == 2


def test_defaults() -> None:
    message = parse()
    assert message.priority is Priority.TRANSACTIONAL
    assert message.sender == "Shop"
    assert message.expires_at == NOW + timedelta(days=3)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"to": "12"}, "to"),
        ({"to": None}, "to"),
        ({"text": ""}, "text"),
        ({"text": 5}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": "\ud800"}, "text"),
        ({"text": "x" * 5000}, "text"),
        ({"from": "A very long sender"}, "from"),
        ({"priority": "urgent"}, "priority"),
        ({"priority": 1}, "priority"),
        ({"client_ref": ""}, "client_ref"),
        ({"send_at": "tomorrow"}, "send_at"),
        ({"send_at": "2026-12-01T10:00:00"}, "send_at"),
        ({"send_at": "2027-12-01T10:00:00+03:00"}, "send_at"),
        ({"validity": "1h"}, "validity"),
        ({"validity": True}, "validity"),
        ({"validity": 5}, "validity"),
        ({"callback_url": "ftp://x"}, "callback_url"),
        ({"callback_url": "http://[::1"}, "callback_url"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, Any], field: str) -> None:
    assert field_of(**fields) == field


def test_batch_prefix_names_the_item() -> None:
    with pytest.raises(Invalid) as info:
        parse_message({"to": "x", "text": "t"}, CTX, "messages[3].")
    assert info.value.error.field == "messages[3].to"


def test_too_many_parts() -> None:
    assert field_of(text="Я" * 67 * 11) == "text"


@given(
    st.dictionaries(
        st.text(max_size=12),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=40),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
        ),
        max_size=8,
    )
)
def test_any_json_object_is_accepted_or_named(data: dict[str, Any]) -> None:
    try:
        parse_message(data, CTX)
    except Invalid as exc:
        assert exc.error.field
        assert exc.error.message
