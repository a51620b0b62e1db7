"""Texts at rest: sealed with the current key, opened with any held key, plaintext kept."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.text_cipher import PREFIX, BadKey, TextCipher, decode_key, from_settings
from gateway.settings import Secret, StoreSettings

KEY, OLD = os.urandom(32), os.urandom(32)


@given(st.text())
def test_a_sealed_text_holds_no_plaintext_and_opens_to_itself(text: str) -> None:
    cipher = TextCipher(KEY)
    sealed = cipher.seal(text)
    payload = sealed.split(":", 2)[2]
    assert sealed.startswith(PREFIX) and (len(text) < 6 or text not in payload)
    assert cipher.unseal(sealed) == text


def test_the_same_text_seals_differently_each_time() -> None:
    cipher = TextCipher(KEY)
    assert cipher.seal("Ваш код 4821") != cipher.seal("Ваш код 4821")


def test_rotation_opens_old_rows_and_plaintext_rows_pass_through() -> None:
    before = TextCipher(OLD).seal("старый")
    rotated = TextCipher(KEY, [OLD])
    assert rotated.unseal(before) == "старый"
    assert rotated.unseal("written before encryption") == "written before encryption"
    assert rotated.seal("new").split(":")[1] != before.split(":")[1]  # the new key's id


def test_an_unknown_key_or_a_tampered_body_is_returned_as_stored_and_counted() -> None:
    sealed = TextCipher(OLD).seal("secret")
    cipher = TextCipher(KEY)
    assert cipher.unseal(sealed) == sealed
    tampered = TextCipher(KEY).seal("secret")[:-4] + "AAA="
    assert cipher.unseal(tampered) == tampered
    assert cipher.unseal(PREFIX + "zz:not base64!") == PREFIX + "zz:not base64!"
    assert cipher.unreadable == 3


def test_without_a_key_texts_stay_plaintext() -> None:
    assert TextCipher().seal("hello") == "hello"


@pytest.mark.parametrize(
    ("value", "problem"), [("not base64!", "not base64"), (base64.b64encode(b"x" * 16), "32 bytes")]
)
def test_a_bad_key_is_refused_naming_it(value: str | bytes, problem: str) -> None:
    encoded = value.decode() if isinstance(value, bytes) else value
    with pytest.raises(BadKey, match=problem):
        decode_key(encoded, "store.encryption_key")
    with pytest.raises(BadKey, match=r"old_encryption_keys\[0\]"):
        StoreSettings(old_encryption_keys=(Secret(encoded),))


def test_settings_build_the_cipher_with_every_key() -> None:
    encoded = [base64.b64encode(k).decode() for k in (KEY, OLD)]
    store = StoreSettings(
        encryption_key=Secret(encoded[0]), old_encryption_keys=(Secret(encoded[1]),)
    )
    assert from_settings(store).unseal(TextCipher(OLD).seal("старый")) == "старый"
