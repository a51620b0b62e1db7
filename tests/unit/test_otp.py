"""OTP core: codes, hashes, the challenge lifecycle, pumping counters, request parsing."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter as Tally
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config_schema import ConfigError
from gateway.core import otp
from gateway.core.otp import Challenge, InvalidOtp, OtpSettings, Outcome, Reason, State, Window
from gateway.settings import from_mapping

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PEPPER = b"server pepper"


def challenge(code: str = "123456", max_tries: int = 5, ttl_s: int = 300) -> Challenge:
    salt = b"s" * 16
    return Challenge(
        id=77,
        salt=salt,
        code_hash=otp.code_hash(PEPPER, salt, 77, code),
        expires_at=T0 + timedelta(seconds=ttl_s),
        tries=0,
        max_tries=max_tries,
        state=State.PENDING,
    )


# --- codes and hashes -------------------------------------------------------------------


@pytest.mark.parametrize("length", [4, 6, 10])
def test_codes_have_the_length_and_only_digits(length: int) -> None:
    codes = [otp.new_code(length) for _ in range(200)]
    assert all(len(c) == length and c.isdigit() for c in codes)
    assert len(set(codes)) > 150  # from a CSPRNG, not a constant or a counter


def test_code_digits_are_roughly_uniform() -> None:
    tally = Tally("".join(otp.new_code(10) for _ in range(2000)))
    assert set(tally) == set("0123456789")
    assert max(tally.values()) < 2 * min(tally.values())  # 2000 each expected


def test_the_hash_is_keyed_salted_and_bound_to_the_challenge() -> None:
    base = otp.code_hash(PEPPER, b"salt", 1, "123456")
    assert base != otp.code_hash(b"other", b"salt", 1, "123456")
    assert base != otp.code_hash(PEPPER, b"tlas", 1, "123456")
    assert base != otp.code_hash(PEPPER, b"salt", 2, "123456")
    assert b"123456" not in base and len(base) == 32


def test_render_replaces_only_the_placeholder() -> None:
    assert otp.render("Код {code}. {name} {0}", "0042") == "Код 0042. {name} {0}"


# --- the lifecycle ----------------------------------------------------------------------


def test_the_right_code_verifies_once() -> None:
    first = otp.check(challenge(), "123456", T0, PEPPER)
    assert first.outcome is Outcome.VERIFIED and first.challenge.state is State.VERIFIED
    again = otp.check(first.challenge, "123456", T0, PEPPER)
    assert again.outcome is Outcome.USED and again.challenge == first.challenge


def test_wrong_codes_spend_tries_then_lock() -> None:
    c = challenge(max_tries=3)
    outcomes = []
    for _ in range(3):
        checked = otp.check(c, "000000", T0, PEPPER)
        outcomes.append(checked.outcome)
        c = checked.challenge
    assert outcomes == [Outcome.WRONG, Outcome.WRONG, Outcome.LOCKED]
    assert c.state is State.LOCKED and c.tries == 3 and c.tries_left == 0
    assert otp.check(c, "123456", T0, PEPPER).outcome is Outcome.LOCKED  # even the right one


def test_an_expired_challenge_never_verifies_and_spends_nothing() -> None:
    c = challenge(ttl_s=60)
    at_expiry = otp.check(c, "123456", T0 + timedelta(seconds=60), PEPPER)
    assert at_expiry.outcome is Outcome.EXPIRED and at_expiry.challenge == c


def test_a_superseded_challenge_is_used() -> None:
    c = replace(challenge(), state=State.SUPERSEDED)
    assert otp.check(c, "123456", T0, PEPPER).outcome is Outcome.USED


def test_the_pepper_matters() -> None:
    assert otp.check(challenge(), "123456", T0, b"wrong pepper").outcome is Outcome.WRONG


codes = st.text(alphabet="0123456789", min_size=4, max_size=10)
moments = st.integers(min_value=0, max_value=400).map(lambda s: T0 + timedelta(seconds=s))


@settings(max_examples=300, deadline=None)
@given(
    secret=codes,
    attempts=st.lists(st.tuples(codes, moments), max_size=25),
    max_tries=st.integers(1, 8),
)
def test_no_sequence_of_checks_breaks_the_rules(
    secret: str, attempts: list[tuple[str, datetime]], max_tries: int
) -> None:
    """Wrong codes never verify; a code verifies at most once, never after expiry,
    locking or using up the tries; tries never exceed the maximum nor go back."""
    c = challenge(secret, max_tries=max_tries)
    verified = 0
    for code, now in attempts:
        checked = otp.check(c, code, now, PEPPER)
        if checked.outcome is Outcome.VERIFIED:
            verified += 1
            assert code == secret and now < c.expires_at
            assert c.state is State.PENDING and c.tries < max_tries
        else:
            assert checked.challenge.state is not State.VERIFIED or c.state is State.VERIFIED
        assert c.tries <= checked.challenge.tries <= max_tries
        assert checked.challenge.tries - c.tries <= 1
        c = checked.challenge
    assert verified <= 1


@settings(max_examples=200, deadline=None)
@given(wrong=st.lists(codes, min_size=1, max_size=30), max_tries=st.integers(1, 8))
def test_an_attacker_gets_at_most_max_tries_guesses(wrong: list[str], max_tries: int) -> None:
    c = challenge("9999999999", max_tries=max_tries)  # no 4-10 digit guess below matches
    guesses = 0
    for code in wrong:
        checked = otp.check(c, code[:9], T0, PEPPER)
        guesses += checked.outcome in (Outcome.WRONG, Outcome.LOCKED) and checked.challenge != c
        c = checked.challenge
    assert guesses == min(len(wrong), max_tries)
    assert (c.state is State.LOCKED) == (len(wrong) >= max_tries)


# --- pumping counters -------------------------------------------------------------------


def test_every_send_is_counted_per_number_range_ip_and_country() -> None:
    s = OtpSettings(country_daily={"RU": 500})
    found = otp.windows_for(s, "+79211234567", "RU", "203.0.113.9")
    by_reason = Tally(c.reason for c in found)
    assert by_reason == {Reason.DESTINATION: 3, Reason.PREFIX: 2, Reason.IP: 2, Reason.COUNTRY: 1}
    assert {c.subject for c in found if c.reason is Reason.PREFIX} == {"79211234"}
    assert [c.limit for c in found if c.reason is Reason.COUNTRY] == [500]
    other = otp.windows_for(s, "+4915112345678", "DE", None)
    assert [c.limit for c in other if c.reason is Reason.COUNTRY] == [1000]
    assert not [c for c in other if c.reason is Reason.IP]


@given(st.text(alphabet="0123456789", min_size=8, max_size=14), st.integers(3, 14))
def test_sequential_numbers_share_a_range(number: str, digits: int) -> None:
    nxt = str(int(number) + 1).zfill(len(number))
    if number[:-1] == nxt[:-1] and digits < len(number):
        assert otp.prefix_of("+" + number, digits) == otp.prefix_of("+" + nxt, digits)


def test_ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    s = OtpSettings()
    a = otp.parse_request({"to": "x", "ip": "2001:db8:1:2::1"}, s).ip
    b = otp.parse_request({"to": "x", "ip": "2001:db8:1:2:ffff::9"}, s).ip
    assert a == b == "2001:db8:1:2::/64"
    assert otp.parse_request({"to": "x", "ip": "::ffff:203.0.113.9"}, s).ip == "203.0.113.9"
    assert otp.mask_ip("203.0.113.9") == "203.0.113.*"


# --- the request ------------------------------------------------------------------------


def test_a_request_takes_the_defaults() -> None:
    r = otp.parse_request({"to": "+79211234567"}, OtpSettings())
    assert (r.ttl_s, r.length, r.text, r.ip, r.client_ref) == (
        300,
        6,
        "Your code: {code}",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"to": "+79211234567", "code": "1"}, "code"),
        ({}, "to"),
        ({"to": 79211234567}, "to"),
        ({"to": "+79211234567", "text": "no placeholder"}, "text"),
        ({"to": "+79211234567", "text": "{code} {code}"}, "text"),
        ({"to": "+79211234567", "ttl": 10}, "ttl"),
        ({"to": "+79211234567", "ttl": 901}, "ttl"),
        ({"to": "+79211234567", "ttl": True}, "ttl"),
        ({"to": "+79211234567", "length": 3}, "length"),
        ({"to": "+79211234567", "length": 11}, "length"),
        ({"to": "+79211234567", "ip": "300.1.1.1"}, "ip"),
        ({"to": "+79211234567", "client_ref": ""}, "client_ref"),
        ({"to": "+79211234567", "from": 5}, "from"),
    ],
)
def test_bad_requests_name_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidOtp) as caught:
        otp.parse_request(body, OtpSettings())
    assert caught.value.error.field == field


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids)))  # fmt: skip
def test_no_body_crashes_the_parser(body: object) -> None:
    with contextlib.suppress(InvalidOtp):
        otp.parse_request(body, OtpSettings())


@pytest.mark.parametrize(
    ("raw", "code"), [("123456", "123456"), (" 123-456 ", "123456"), ("0000", "0000")]
)
def test_codes_as_typed(raw: str, code: str) -> None:
    assert otp.parse_code(raw) == code


@pytest.mark.parametrize("raw", [None, 123456, "", "12a456", "123", "１２３４５６", "1" * 11])
def test_bad_codes_name_the_field(raw: object) -> None:
    with pytest.raises(InvalidOtp) as caught:
        otp.parse_code(raw)
    assert caught.value.error.field == "code"


# --- settings ---------------------------------------------------------------------------


def test_settings_from_the_config_file() -> None:
    s = from_mapping(
        {
            "otp_secret": "pepper",
            "otp": {
                "length": 8,
                "per_destination": [{"limit": 2, "seconds": 60}],
                "country_daily": {"RU": 5000, "TJ": 0},
            },
        }
    )
    assert s.otp.length == 8 and s.otp.per_destination == (Window(2, 60),)
    assert s.otp.country_daily == {"RU": 5000, "TJ": 0}
    assert s.otp_secret is not None and "pepper" not in repr(s)


@pytest.mark.parametrize(
    ("otp_table", "key"),
    [
        ({"length": 3}, "otp"),
        ({"text": "no placeholder"}, "otp"),
        ({"per_ip": [{"limit": 0, "seconds": 60}]}, "otp.per_ip[0]"),
        ({"lenght": 6}, "otp.lenght"),
        ({"country_daily": {"ru": 5}}, "otp"),
        ({"prefix_digits": 11}, "otp"),
    ],
)
def test_bad_settings_name_the_key(otp_table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping({"otp": otp_table})
    assert caught.value.key == key


def test_otp_core_imports_no_io() -> None:
    code = "import sys, gateway.core.otp; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    io = ("asyncio", "aiohttp", "aiopg", "psycopg2", "redis", "socket", "ssl", "selectors")
    assert not [m for m in loaded if m.split(".")[0] in io]
