"""An HTTP SMS API described as data: how to send, how to read the answer and the receipts.

A dialect (``HttpDialect``) is a tree of frozen dataclasses that ``gateway.config_schema``
can build from TOML, so that a provider nobody has coded for is a config table away. The
two built-in dialects (``providers.http.dialects``) are values of the same types.

Templates are ``str.format`` strings over a fixed set of placeholders (``{to}``,
``{text}``…, see ``MESSAGE_FIELDS``); attribute access, indexing and format specs are
refused when the spec is built, so a template can never reach into an object. Paths into
a JSON document are dotted (``messages.0.messageId``: a number indexes a list); for a text
answer, ``ResponseSpec.id`` and ``errors`` are regular expressions with one group.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from providers.base import ReceiptStatus
from providers.http.paths import nest

Method = Literal["GET", "POST", "PUT"]
BodyKind = Literal["form", "json", "query"]
AuthKind = Literal["none", "basic", "bearer", "header", "query"]
SignatureScheme = Literal["none", "hmac-sha256", "hmac-sha1-url", "token"]
Credential = Literal["webhook_secret", "password", "token"]
DocFormat = Literal["json", "form"]

ACCOUNT_FIELDS = frozenset({"base_url", "account", "username", "callback_url"})
MESSAGE_FIELDS = ACCOUNT_FIELDS | {"to", "to_digits", "from", "text", "message_id"}
POLL_FIELDS = ACCOUNT_FIELDS | {"provider_id"}


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """How one message goes out.

    ``fields`` maps a form/query parameter name (or a dotted JSON path, for ``body =
    "json"``) to a template; a field that renders empty is left out (``StatusCallback``
    when no receipt is wanted). ``body = "query"`` puts the fields in the URL, with no body.
    """

    url: str
    method: Method = "POST"
    body: BodyKind = "form"
    fields: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_template(self.url, MESSAGE_FIELDS, "request.url")
        for name, template in self.fields.items():
            check_template(template, MESSAGE_FIELDS, f"request.fields.{name}")
        if self.body == "json":
            check_json_paths(self.fields)
        if self.method == "GET" and self.body != "query":
            raise ValueError('request: a GET sends its fields as body = "query"')


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """Where the provider's message id and error code are in its answer.

    A 2xx answer with an id is success, unless ``status`` (a path) holds one of
    ``refused``. The error code comes from the first of ``errors`` that is present. A
    refusal is permanent unless the HTTP status says "later" (408, 425, 429, 5xx; also 401,
    402, 403 and 404, which are our configuration or the account, not the message) or its
    code is one of ``temporary_errors``.
    """

    id: str
    format: Literal["json", "text"] = "json"
    errors: tuple[str, ...] = ()
    status: str = ""
    refused: tuple[str, ...] = ()
    temporary_errors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format == "text":
            for pattern in (self.id, *self.errors):
                if re.compile(pattern).groups != 1:
                    raise ValueError(f"response: {pattern!r} needs exactly one group")


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """The fields of one delivery report, and how its statuses map to ours.

    ``statuses`` maps the provider's status to a ``ReceiptStatus`` value; one not in the
    map becomes ``unknown``. An error value in ``no_error`` means none.
    """

    id: str
    status: str
    statuses: Mapping[str, str]
    error: str = ""
    done_at: str = ""
    no_error: tuple[str, ...] = ("", "0")

    def __post_init__(self) -> None:
        known = {s.value for s in ReceiptStatus}
        for theirs, ours in self.statuses.items():
            if ours not in known:
                raise ValueError(f"statuses.{theirs}: {ours!r} is not one of {sorted(known)}")


@dataclass(frozen=True, slots=True)
class InboundSpec:
    """A mobile-originated message in a callback: an item that has ``text`` is one."""

    text: str
    source: str
    destination: str
    received_at: str = ""


@dataclass(frozen=True, slots=True)
class SignatureSpec:
    """How a callback proves it comes from the provider.

    ``hmac-sha256``: an HMAC-SHA256 of the raw body in ``header`` (``hex`` or ``base64``,
    after ``prefix``). ``hmac-sha1-url``: Twilio's scheme, a base64 HMAC-SHA1 of the URL
    followed by every form parameter's name and value, sorted. ``token``: ``header`` holds
    the secret itself. ``key`` names the account credential that is the secret.
    """

    scheme: SignatureScheme = "none"
    header: str = "X-Signature"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    key: Credential = "webhook_secret"


@dataclass(frozen=True, slots=True)
class CallbackSpec:
    """What the provider posts to ``/v1/receipts/{provider}``: receipts and inbound messages.

    A form body is one item; a JSON body is one item, or a list of them at ``items``.
    """

    receipt: ReportSpec
    format: DocFormat = "json"
    items: str = ""
    inbound: InboundSpec | None = None
    signature: SignatureSpec = field(default_factory=SignatureSpec)

    def __post_init__(self) -> None:
        if self.format == "form" and self.items:
            raise ValueError("callback: a form body is one item; items must be empty")


@dataclass(frozen=True, slots=True)
class PollSpec:
    """Receipts fetched rather than pushed.

    ``reports``: GET ``url`` returns the reports not yet fetched (each once), as a JSON list
    at ``items``. ``per_id``: GET ``url`` (with ``{provider_id}``) returns one message's
    state; asked for each message still awaiting a final receipt.
    """

    mode: Literal["none", "reports", "per_id"] = "none"
    url: str = ""
    items: str = ""
    receipt: ReportSpec | None = None

    def __post_init__(self) -> None:
        if self.mode == "none":
            return
        if not self.url or self.receipt is None:
            raise ValueError(f"poll: mode {self.mode!r} needs url and receipt")
        check_template(self.url, POLL_FIELDS, "poll.url")
        if self.mode == "per_id" and "provider_id" not in placeholders(self.url):
            raise ValueError("poll: a per_id url needs {provider_id}")


@dataclass(frozen=True, slots=True)
class AuthSpec:
    """How a request proves the account: with the account's username/password or token.

    ``basic``: username:password. ``bearer``: ``Authorization: {scheme} {token}``.
    ``header``: ``{header}: {token}``. ``query``: ``{param}={token}`` (and
    ``{user_param}={username}`` when set) in the URL.
    """

    kind: AuthKind = "none"
    scheme: str = "Bearer"
    header: str = ""
    param: str = ""
    user_param: str = ""

    def __post_init__(self) -> None:
        if self.kind == "header" and not self.header:
            raise ValueError("auth: kind header needs header")
        if self.kind == "query" and not self.param:
            raise ValueError("auth: kind query needs param")


@dataclass(frozen=True, slots=True)
class HttpDialect:
    """One HTTP SMS API, complete: request, answer, auth, callbacks, polling."""

    request: RequestSpec
    response: ResponseSpec
    callback: CallbackSpec
    auth: AuthSpec = field(default_factory=AuthSpec)
    poll: PollSpec = field(default_factory=PollSpec)


def placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check_template(template: str, allowed: Iterable[str], where: str) -> None:
    """Refuse unknown placeholders, attribute access, indexing, conversions and specs."""
    allowed = frozenset(allowed)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            known = ", ".join(sorted(allowed))
            raise ValueError(f"{where}: {{{name}}} is not a plain placeholder of: {known}")


def check_json_paths(fields: Mapping[str, str]) -> None:
    """Paths must build one document: no value where an object goes, lists counted from 0."""
    try:
        nest(dict.fromkeys(fields, "x"))
    except ValueError as exc:
        raise ValueError(f"request.fields: {exc}") from None
