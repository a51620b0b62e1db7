"""Requests built from a dialect, an account and a message. Pure: bytes out, no IO."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from providers.base import Submission
from providers.http.paths import JsonValue, nest
from providers.http.spec import AuthSpec, HttpDialect

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Account:
    """What templates and auth draw on: one provider account's URL, ids and credentials."""

    base_url: str
    account: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    callback_url: str = ""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str = field(repr=False)  # may carry a token (auth kind "query") or a number
    headers: Pairs = field(repr=False)
    body: bytes | None = field(default=None, repr=False)


def render_submit(dialect: HttpDialect, account: Account, submission: Submission) -> HttpRequest:
    spec = dialect.request
    values = message_values(account, submission)
    headers, query = authorize(dialect.auth, account)
    headers += tuple(spec.headers.items())
    url = fill_url(spec.url, values)
    if spec.body == "json":
        doc = fill_json(_skeleton(tuple(spec.fields.items())), values)
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        return HttpRequest(
            spec.method, with_query(url, query), (*headers, ("Content-Type", JSON)), body
        )
    filled = {name: template.format_map(values) for name, template in spec.fields.items()}
    fields = {name: value for name, value in filled.items() if value}
    if spec.body == "query":
        return HttpRequest(spec.method, with_query(url, (*fields.items(), *query)), headers)
    body = urlencode(fields).encode()
    return HttpRequest(
        spec.method, with_query(url, query), (*headers, ("Content-Type", FORM)), body
    )


@functools.lru_cache(maxsize=64)
def _skeleton(fields: Pairs) -> JsonValue:
    """The JSON body with templates for leaves, built once per dialect."""
    return nest(dict(fields))


def fill_json(node: JsonValue, values: Mapping[str, str]) -> JsonValue:
    """Fill every template leaf; leaves that render empty, and containers left empty, go."""
    if isinstance(node, str):
        return node.format_map(values)
    if isinstance(node, list):
        return [v for v in (fill_json(item, values) for item in node) if v not in _EMPTY]
    assert isinstance(node, dict)
    filled = ((key, fill_json(item, values)) for key, item in node.items())
    return {key: value for key, value in filled if value not in _EMPTY}


_EMPTY: tuple[JsonValue, ...] = ("", [], {})


def render_poll(dialect: HttpDialect, account: Account, provider_id: str = "") -> HttpRequest:
    values = account_values(account) | {"provider_id": provider_id}
    headers, query = authorize(dialect.auth, account)
    return HttpRequest("GET", with_query(fill_url(dialect.poll.url, values), query), headers)


def account_values(account: Account) -> dict[str, str]:
    return {
        "base_url": account.base_url.rstrip("/"),
        "account": account.account,
        "username": account.username,
        "callback_url": account.callback_url,
    }


def message_values(account: Account, submission: Submission) -> dict[str, str]:
    values = account_values(account)
    if not submission.want_receipt:
        values["callback_url"] = ""
    values["to"] = submission.destination
    values["to_digits"] = submission.destination.removeprefix("+")
    values["from"] = submission.source
    values["text"] = submission.text
    values["message_id"] = str(submission.message_id)
    return values


def authorize(auth: AuthSpec, account: Account) -> tuple[Pairs, Pairs]:
    """The headers and query parameters that carry the account's credentials."""
    if auth.kind == "basic":
        pair = f"{account.username}:{account.password}".encode()
        return (("Authorization", "Basic " + base64.b64encode(pair).decode()),), ()
    if auth.kind == "bearer":
        return (("Authorization", f"{auth.scheme} {account.token}"),), ()
    if auth.kind == "header":
        return ((auth.header, account.token),), ()
    if auth.kind == "query":
        user = ((auth.user_param, account.username),) if auth.user_param else ()
        return (), (*user, (auth.param, account.token))
    return (), ()


def fill_url(template: str, values: Mapping[str, str]) -> str:
    """Every value but ``base_url`` is percent-encoded whole (a "/" in an id stays inside)."""
    return template.format_map(_Quoted(values))


def with_query(url: str, pairs: Pairs | tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(pairs)


class _Quoted(dict[str, str]):
    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)

    def __getitem__(self, key: str) -> str:
        value = super().__getitem__(key)
        return value if key == "base_url" else quote(value, safe="")
