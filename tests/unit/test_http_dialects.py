"""HTTP dialects: requests rendered, answers, callbacks and signatures parsed. Pure, no loop."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config_schema import ConfigError, build
from providers.base import (
    ProviderError,
    ProviderPermanentError,
    ProviderTemporaryError,
    ReceiptStatus,
    Submission,
)
from providers.http.dialects import FORM, JSON
from providers.http.parse import (
    CallbackRejected,
    accept_callback,
    parse_answer,
    parse_callback,
    parse_time,
    retry_after_seconds,
    signature,
    verify,
)
from providers.http.paths import dig, nest
from providers.http.render import Account, fill_url, render_poll, render_submit
from providers.http.settings import HttpSettings, resolve_dialect
from providers.http.spec import (
    RequestSpec,
    ResponseSpec,
    SignatureSpec,
    check_template,
)

ACCOUNT = Account("https://api.example.com/", "AC1", "AC1", "pw", "tok", "https://gw/v1/r/x")
CYRILLIC = "Ваш код: 4821 — «Ёлка» & {друзья} 100%"
TEXTS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=400)
SECRETS = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


def message(text: str = CYRILLIC, **changes: Any) -> Submission:
    return Submission(42, changes.pop("destination", "+79211234567"), "Acme", text, **changes)


# -- rendering -------------------------------------------------------------------------------


def test_form_request_is_twilio_shaped() -> None:
    request = render_submit(FORM, ACCOUNT, message())
    assert request.method == "POST"
    assert request.url == "https://api.example.com/2010-04-01/Accounts/AC1/Messages.json"
    headers = dict(request.headers)
    assert headers["Authorization"] == "Basic QUMxOnB3"  # base64("AC1:pw")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.body is not None
    assert parse_qs(request.body.decode()) == {
        "To": ["+79211234567"],
        "From": ["Acme"],
        "Body": [CYRILLIC],
        "StatusCallback": ["https://gw/v1/r/x"],
    }


def test_json_request_is_infobip_shaped() -> None:
    request = render_submit(JSON, ACCOUNT, message())
    assert dict(request.headers)["Authorization"] == "Bearer tok"
    assert request.body is not None
    assert json.loads(request.body) == {
        "messages": [
            {
                "destinations": [{"to": "79211234567"}],
                "from": "Acme",
                "text": CYRILLIC,
                "notifyUrl": "https://gw/v1/r/x",
                "callbackData": "42",
            }
        ]
    }
    assert CYRILLIC.encode() in request.body  # UTF-8 as is: a third of \\u escapes' size


def test_no_callback_url_when_no_receipt_is_wanted() -> None:
    form = render_submit(FORM, ACCOUNT, message(want_receipt=False))
    assert form.body is not None and b"StatusCallback" not in form.body
    body = render_submit(JSON, ACCOUNT, message(want_receipt=False)).body
    assert body is not None and "notifyUrl" not in json.loads(body)["messages"][0]


def test_secrets_never_print() -> None:
    request = render_submit(FORM, ACCOUNT, message())
    assert "QUMxOnB3" not in repr(request) and "7921" not in repr(request)
    assert "pw" not in repr(ACCOUNT).replace("AC1", "")
    settings = HttpSettings("x", "https://x", "json", token="tok-123", webhook_secret="s-456")
    assert "tok-123" not in repr(settings) and "s-456" not in repr(settings)


@given(TEXTS)
def test_any_text_round_trips_through_the_form_body(text: str) -> None:
    body = render_submit(FORM, ACCOUNT, message(text)).body
    assert body is not None
    assert parse_qs(body.decode(), keep_blank_values=True)["Body"] == [text]


@given(TEXTS)
def test_any_text_round_trips_through_the_json_body(text: str) -> None:
    body = render_submit(JSON, ACCOUNT, message(text)).body
    assert body is not None
    assert json.loads(body)["messages"][0]["text"] == text


@given(TEXTS)
def test_any_text_round_trips_through_a_query(text: str) -> None:
    spec = RequestSpec(
        url="{base_url}/send?fmt=0", method="GET", body="query", fields={"mes": "{text}"}
    )
    generic = replace(JSON, request=spec)
    request = render_submit(generic, ACCOUNT, message(text))
    query = parse_qs(urlsplit(request.url).query, keep_blank_values=True)
    assert query == {"fmt": ["0"], "mes": [text]} and request.body is None


@given(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60))
def test_a_value_in_a_url_stays_one_path_segment(provider_id: str) -> None:
    url = render_poll(FORM, ACCOUNT, provider_id).url
    path = urlsplit(url).path
    assert path.count("/") == 5 and path.endswith(".json")


def test_query_auth_goes_in_the_url() -> None:
    spec = RequestSpec(url="{base_url}/send", method="GET", body="query", fields={"to": "{to}"})
    generic = replace(JSON, request=spec, auth=replace(JSON.auth, kind="query", param="psw",
                                                        user_param="login"))  # fmt: skip
    request = render_submit(generic, ACCOUNT, message())
    assert parse_qs(urlsplit(request.url).query) == {
        "to": ["+79211234567"], "login": ["AC1"], "psw": ["tok"],
    }  # fmt: skip
    assert "Authorization" not in dict(request.headers)


def test_nest_builds_objects_and_lists() -> None:
    assert nest({"a.0.b": "1", "a.0.c": "2", "a.1.b": "3", "d": "4"}) == {
        "a": [{"b": "1", "c": "2"}, {"b": "3"}],
        "d": "4",
    }
    for bad in ({"a": "1", "a.b": "2"}, {"a.b": "1", "a": "2"}, {"a.1": "x"}):
        with pytest.raises(ValueError):
            nest(bad)


def test_dig_reads_paths_or_gives_none() -> None:
    doc = {"messages": [{"messageId": "m1", "n": 5}]}
    assert dig(doc, "messages.0.messageId") == "m1"
    assert dig(doc, "messages.1.messageId") is None
    assert dig(doc, "messages.x") is None and dig(doc, "") is doc
    assert dig("text", "a") is None


# -- templates are checked when the spec is built ----------------------------------------------


@pytest.mark.parametrize(
    "template",
    ["{text.__class__}", "{text[0]}", "{text!r}", "{text:>10}", "{password}", "{nope}", "{"],
)
def test_templates_allow_plain_known_placeholders_only(template: str) -> None:
    with pytest.raises(ValueError):
        check_template(template, {"text", "to"}, "request.fields.x")


def test_spec_refuses_inconsistent_requests_and_answers() -> None:
    with pytest.raises(ValueError, match="GET"):
        RequestSpec(url="{base_url}", method="GET", body="form")
    with pytest.raises(ValueError, match="already"):
        RequestSpec(url="{base_url}", body="json", fields={"a": "{to}", "a.b": "{text}"})
    with pytest.raises(ValueError, match="one group"):
        ResponseSpec(id="ID - \\d+", format="text")


# -- answers ---------------------------------------------------------------------------------


def answer(dialect: Any, status: int, doc: object, retry_after: float = 1.0) -> str:
    return parse_answer(dialect.response, status, json.dumps(doc).encode(), retry_after)


def test_form_answers() -> None:
    assert answer(FORM, 201, {"sid": "SM1", "status": "queued"}) == "SM1"
    with pytest.raises(ProviderPermanentError) as permanent:
        answer(FORM, 400, {"code": 21211, "message": "invalid To"})
    assert permanent.value.code == "http:21211"
    with pytest.raises(ProviderTemporaryError) as throttled:
        answer(FORM, 429, {"code": 20429}, retry_after=3.0)
    assert throttled.value.code == "http:20429" and throttled.value.retry_after == 3.0
    with pytest.raises(ProviderPermanentError):
        answer(FORM, 201, {"sid": "SM2", "status": "failed", "code": 30007})


def test_json_answers() -> None:
    ok = {"messages": [{"messageId": "m1", "status": {"groupName": "PENDING"}}]}
    assert answer(JSON, 200, ok) == "m1"
    rejected = {"groupName": "REJECTED", "name": "REJECTED_DESTINATION"}
    refused = {"messages": [{"messageId": "", "status": rejected}]}
    with pytest.raises(ProviderPermanentError) as info:
        answer(JSON, 200, refused)
    assert info.value.code == "http:REJECTED_DESTINATION"
    no_credit = {"messages": [{"status": {"groupName": "REJECTED",
                                          "name": "REJECTED_NOT_ENOUGH_CREDITS"}}]}  # fmt: skip
    with pytest.raises(ProviderTemporaryError):
        answer(JSON, 200, no_credit)
    with pytest.raises(ProviderTemporaryError) as unauthorized:
        answer(JSON, 401, {"requestError": {"serviceException": {"messageId": "UNAUTHORIZED"}}})
    assert unauthorized.value.code == "http:UNAUTHORIZED"


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ProviderTemporaryError), (503, ProviderTemporaryError), (404, ProviderTemporaryError),
     (400, ProviderPermanentError), (422, ProviderPermanentError), (200, ProviderTemporaryError)],
)  # fmt: skip
def test_answers_without_a_code_go_by_status(status: int, error: type[ProviderError]) -> None:
    with pytest.raises(error) as info:
        parse_answer(JSON.response, status, b"<html>oops</html>")
    assert info.value.code == ("http_bad_answer" if status == 200 else f"http_status:{status}")


def test_text_answers() -> None:
    spec = ResponseSpec(
        id=r"ID - (\d+)", format="text", errors=(r"ERROR = (\d+)",), temporary_errors=("9",)
    )
    assert parse_answer(spec, 200, b"OK - 1 SMS, ID - 1234") == "1234"
    with pytest.raises(ProviderPermanentError, match="http:7"):
        parse_answer(spec, 200, b"ERROR = 7 (invalid number format)")
    with pytest.raises(ProviderTemporaryError, match="http:9"):
        parse_answer(spec, 200, b"ERROR = 9 (duplicate request)")


@given(st.integers(100, 599), st.binary(max_size=200))
def test_no_answer_crashes_the_parser(status: int, body: bytes) -> None:
    for dialect in (FORM, JSON):
        with contextlib.suppress(ProviderError):
            assert parse_answer(dialect.response, status, body)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.sampled_from(["messages", "0", "messageId", "sid"]),
                                      kids, max_size=3)))  # fmt: skip
def test_no_json_shape_crashes_the_parser(doc: object) -> None:
    for dialect in (FORM, JSON):
        with contextlib.suppress(ProviderError):
            answer(dialect, 200, doc)


def test_retry_after() -> None:
    now = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
    http_date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(http_date, now) == 30.0
    assert retry_after_seconds(None, now) == retry_after_seconds("soon", now) == 1.0
    assert retry_after_seconds("-5", now) == retry_after_seconds("nan", now) == 1.0
    assert retry_after_seconds("99999999", now) == 3600.0


# -- signatures ------------------------------------------------------------------------------

TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def test_twilio_signature_matches_the_published_vector() -> None:
    spec = FORM.callback.signature
    body = urlencode(TWILIO_PARAMS).encode()
    assert signature(spec, "12345", body, TWILIO_URL) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    headers = {"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    assert verify(spec, "12345", headers, body, TWILIO_URL)
    assert not verify(spec, "12345", headers, body, TWILIO_URL + "&x=1")
    assert not verify(spec, "12345", headers, body.replace(b"1234&", b"1235&"), TWILIO_URL)


@given(SECRETS, st.binary(max_size=300), st.binary(min_size=1, max_size=5), st.data())
def test_an_hmac_signature_verifies_only_the_exact_body(
    secret: str, body: bytes, extra: bytes, data: st.DataObject
) -> None:
    spec = JSON.callback.signature
    headers = {spec.header.lower(): signature(spec, secret, body, "")}
    assert verify(spec, secret, headers, body, "")
    assert not verify(spec, secret, headers, body + extra, "")
    if body:
        i = data.draw(st.integers(0, len(body) - 1))
        flipped = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        assert not verify(spec, secret, headers, flipped, "")
    assert not verify(spec, secret + "x", headers, body, "")


def test_missing_signature_or_secret_fails() -> None:
    spec = SignatureSpec(scheme="token", header="X-Key")
    assert verify(spec, "k", {"x-key": "k"}, b"", "")
    assert not verify(spec, "k", {}, b"", "") and not verify(spec, "", {"x-key": ""}, b"", "")
    assert verify(SignatureSpec(), "", {}, b"anything", "")


# -- callbacks -------------------------------------------------------------------------------


def test_form_status_callback() -> None:
    body = b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30005&To=%2B79211234567"
    result = parse_callback(FORM.callback, "tw", body)
    [receipt] = result.receipts
    assert (receipt.provider, receipt.provider_message_id) == ("tw", "SM1")
    assert receipt.status is ReceiptStatus.UNDELIVERABLE and receipt.error_code == "30005"
    assert result.inbound == ()


def test_form_inbound_callback() -> None:
    body = urlencode({"MessageSid": "SM9", "From": "+79211234567", "To": "+79001112233",
                      "Body": CYRILLIC, "SmsStatus": "received"}).encode()  # fmt: skip
    [part] = parse_callback(FORM.callback, "tw", body).inbound
    assert part.text == CYRILLIC and part.source == "+79211234567"


def test_json_delivery_reports() -> None:
    doc = {"results": [
        {"messageId": "m1", "status": {"groupName": "DELIVERED"}, "error": {"id": 0},
         "doneAt": "2026-11-09T16:00:00.000+0000"},
        {"messageId": "m2", "status": {"groupName": "EXPIRED"}, "error": {"id": 27}},
        {"messageId": "m3", "status": {"groupName": "SOMETHING_NEW"}},
        {"status": {"groupName": "DELIVERED"}},
        {"messageId": "mo1", "from": "79211234567", "to": "79001112233", "text": "Да"},
    ]}  # fmt: skip
    result = parse_callback(JSON.callback, "ib", json.dumps(doc).encode())
    m1, m2, m3 = result.receipts
    assert m1.status is ReceiptStatus.DELIVERED and m1.error_code is None
    assert m1.done_at == datetime(2026, 11, 9, 16, tzinfo=UTC)
    assert (m2.status, m2.error_code) == (ReceiptStatus.EXPIRED, "27")
    assert m3.status is ReceiptStatus.UNKNOWN
    assert [p.text for p in result.inbound] == ["Да"] and result.skipped == 1


@pytest.mark.parametrize(
    "body", [b"", b"\xff", b"[1, 2", b'{"results": {}}', b'{"results": [{"a": 1}]}', b"7"]
)
def test_malformed_json_callbacks_are_400(body: bytes) -> None:
    with pytest.raises(CallbackRejected) as info:
        parse_callback(JSON.callback, "ib", body)
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"no-equals-sign", b"\xff=\xfe", b"a=1&b"])
def test_malformed_form_callbacks_are_400(body: bytes) -> None:
    headers = {"x-twilio-signature": "x"}
    with pytest.raises(CallbackRejected) as info:
        accept_callback(FORM.callback, "token", "tw", headers, body, "https://gw/")
    assert info.value.status == 400


def test_callbacks_are_verified_before_they_are_read() -> None:
    body = b'{"results": [{"messageId": "m1", "status": {"groupName": "DELIVERED"}}]}'
    with pytest.raises(CallbackRejected) as info:
        accept_callback(JSON.callback, "secret", "ib", {"x-signature": "00"}, body, "")
    assert info.value.status == 401
    good = {"x-signature": signature(JSON.callback.signature, "secret", body, "")}
    assert accept_callback(JSON.callback, "secret", "ib", good, body, "").receipts


@given(st.binary(max_size=200))
def test_no_callback_body_crashes_the_parser(body: bytes) -> None:
    for dialect in (FORM, JSON):
        try:
            parse_callback(dialect.callback, "p", body)
        except CallbackRejected as exc:
            assert exc.status == 400


def test_times() -> None:
    assert parse_time("2026-11-09T16:00:00Z") == datetime(2026, 11, 9, 16, tzinfo=UTC)
    assert parse_time("Mon, 09 Nov 2026 16:00:00 +0000") == datetime(2026, 11, 9, 16, tzinfo=UTC)
    assert parse_time("2026-11-09 16:00:00") == datetime(2026, 11, 9, 16, tzinfo=UTC)
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_fill_url_quotes_values_but_not_the_base() -> None:
    values = {"base_url": "https://h/x", "provider_id": "a/b?c"}
    assert fill_url("{base_url}/m/{provider_id}.json", values) == "https://h/x/m/a%2Fb%3Fc.json"


# -- settings from config --------------------------------------------------------------------


def test_settings_build_from_toml() -> None:
    data = tomllib.loads(
        """
        name = "infobip"
        base_url = "https://xyz.api.infobip.com"
        dialect = "json"
        token = "key"
        auth_scheme = "App"
        webhook_secret = "s"
        concurrency = 20
        poll_interval = 30
        """
    )
    settings = build(HttpSettings, data, "providers[0]")
    assert settings.concurrency == 20 and settings.poll_interval == 30.0
    request = render_submit(resolve_dialect(settings), settings.account_values(), message())
    assert dict(request.headers)["Authorization"] == "App key"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"dialect": "json", "token": ""}, "token is needed"),
        ({"dialect": "json", "webhook_secret": ""}, "webhook_secret is needed"),
        ({"dialect": "form", "account": ""}, "account is needed"),
        ({"dialect": "form", "password": ""}, "password is needed"),
        ({"concurrency": 0}, "at least 1"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"dialect": "generic"}, "generic"),
        ({"poll_interval": 0}, "positive"),
    ],
)
def test_settings_problems_are_named(changes: dict[str, Any], problem: str) -> None:
    data = {"name": "p", "base_url": "https://x", "account": "AC1", "username": "AC1",
            "password": "pw", "token": "t", "webhook_secret": "s"} | changes  # fmt: skip
    with pytest.raises(ConfigError, match=problem):
        build(HttpSettings, data, "providers[0]")


def test_generic_dialect_builds_and_its_errors_are_named() -> None:
    data = {
        "name": "g", "base_url": "https://x", "dialect": "generic", "token": "t",
        "generic": {
            "request": {"url": "{base_url}/send", "method": "POST", "body": "json",
                        "fields": {"sms.to": "{to}", "sms.body": "{text}"}},
            "response": {"id": "result.id", "errors": ["error.code"]},
            "auth": {"kind": "header", "header": "X-Api-Key"},
            "callback": {"receipt": {"id": "id", "status": "state",
                                     "statuses": {"OK": "delivered", "FAIL": "undeliverable"}}},
        },
    }  # fmt: skip
    settings = build(HttpSettings, data, "providers[0]")
    assert settings.generic is not None
    body = render_submit(settings.generic, settings.account_values(), message()).body
    assert body is not None and json.loads(body) == {
        "sms": {"to": "+79211234567", "body": CYRILLIC}
    }
    data["generic"]["request"]["fields"]["sms.to"] = "{to.real}"  # type: ignore[index]
    with pytest.raises(ConfigError, match="plain placeholder"):
        build(HttpSettings, data, "providers[0]")
    data["generic"]["request"]["fields"]["sms.to"] = "{to}"  # type: ignore[index]
    data["generic"]["callback"]["receipt"]["statuses"]["OK"] = "fine"  # type: ignore[index]
    with pytest.raises(ConfigError, match="not one of"):
        build(HttpSettings, data, "providers[0]")


def test_the_dialect_modules_import_no_io_library() -> None:
    pure = "providers.http.spec, providers.http.render, providers.http.parse, "
    pure += "providers.http.dialects, providers.http.settings"
    code = f"import sys, {pure}; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    bad = sorted(m for m in loaded if m.split(".")[0] in IO_LIBRARIES)
    assert not bad and "providers.http.provider" not in loaded, f"pulled in {bad}"


# Not socket, ssl, selectors: asyncio brings them, through providers.base's Ack type.
IO_LIBRARIES = frozenset(
    {"aiohttp", "yarl", "multidict", "aiopg", "psycopg2", "redis", "uvloop", "aiosmpplib",
     "http", "gateway", "smsgw"}
)  # fmt: skip
