"""Transliteration (ICAO 9303): Cyrillic and smart punctuation to GSM-7, always."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admin.core.translit import transliterate
from providers.encoding import analyse

RELAXED = settings(deadline=None)  # a loaded 2-core machine: no per-example deadline


@pytest.mark.parametrize(
    ("russian", "latin"),
    [
        ("Щукин", "Shchukin"),
        ("Юлия", "Iuliia"),
        ("Хабаровск", "Khabarovsk"),
        ("Цой", "Tsoi"),
        ("Подъезд", "Podieezd"),
        ("Мальчик", "Malchik"),
        ("ЖУК", "ZHUK"),
        ("Ёлка", "Elka"),
        ("съешь ещё этих мягких французских булок",
         "sieesh eshche etikh miagkikh frantsuzskikh bulok"),
    ],
)  # fmt: skip
def test_icao_9303(russian: str, latin: str) -> None:
    assert transliterate(russian) == latin


def test_smart_characters_map_to_gsm7() -> None:
    assert transliterate("«Акция» — до 31.12… №5 – 100\u00a0₽") == (
        '"Aktsiia" - do 31.12... N5 - 100 RUB'
    )
    assert transliterate("‘x’ “y” `z`") == "'x' \"y\" 'z'"


def test_gsm7_text_is_left_alone() -> None:
    text = "Hello {name} [50%] €5 Ñandù ü @home_1\n"
    assert transliterate(text) == text


def test_accented_letters_lose_their_accent_others_become_a_question_mark() -> None:
    assert transliterate("Łódź ąę ú 😀 漢") == "Lodz ae u ? ?"


def test_transliteration_saves_parts() -> None:
    text = "Здравствуйте! Ваш заказ №1234 собран и ждёт вас в пункте выдачи до пятницы."
    assert analyse(text).parts == 2
    assert analyse(transliterate(text)).parts == 1


cyrillic_and_ascii = st.text(
    st.characters(min_codepoint=0x0400, max_codepoint=0x052F)
    | st.characters(max_codepoint=0x7F)
    | st.sampled_from("«»—–…№ёЁ„“”‘’\u00a0₽")
)


@RELAXED
@given(cyrillic_and_ascii)
def test_any_cyrillic_and_ascii_text_becomes_gsm7(text: str) -> None:
    assert analyse(transliterate(text)).encoding == "gsm7"


@RELAXED
@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_any_text_at_all_becomes_gsm7(text: str) -> None:
    assert analyse(transliterate(text)).encoding == "gsm7"


@RELAXED
@given(st.text(st.characters(min_codepoint=0x0410, max_codepoint=0x044F) | st.just(" ")))
def test_russian_letters_never_become_question_marks(text: str) -> None:
    assert "?" not in transliterate(text)
