"""HTTP provider settings: one account of a built-in dialect, or a ``generic`` one from config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from providers.http.dialects import BUILT_IN
from providers.http.render import Account
from providers.http.spec import HttpDialect, placeholders

DialectName = Literal["form", "json", "generic"]


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """One HTTP provider account.

    ``concurrency`` is the window: requests in flight at once (submissions; polling has its
    own ``poll_concurrency`` on top). ``callback_url`` is our public receipts URL
    (``https://…/v1/receipts/{name}``): it goes with every message that wants a receipt,
    and a URL-signed callback (``form``) is verified against it. ``webhook_secret`` verifies
    callbacks (the ``form`` dialect uses ``password``, the auth token, as Twilio does).
    ``auth_scheme`` replaces the dialect's bearer scheme (``App`` for Infobip API keys).
    ``poll_interval`` (seconds) turns receipt polling on where the dialect has it.
    ``max_awaiting`` bounds the ids kept in memory for per-id polling.
    """

    name: str
    base_url: str
    dialect: DialectName = "json"
    account: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    auth_scheme: str = ""
    webhook_secret: str = field(default="", repr=False)
    callback_url: str = ""
    concurrency: int = 50
    connect_timeout: float = 5.0
    request_timeout: float = 15.0
    close_timeout: float = 5.0
    poll_interval: float | None = None
    poll_concurrency: int = 4
    max_awaiting: int = 100_000
    generic: HttpDialect | None = None

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ValueError(f"HTTP provider {self.name!r}: {problem}")

    def account_values(self) -> Account:
        return Account(
            self.base_url,
            self.account,
            self.username,
            self.password,
            self.token,
            self.callback_url,
        )

    def callback_secret(self, dialect: HttpDialect) -> str:
        return str(getattr(self, dialect.callback.signature.key))


def resolve_dialect(settings: HttpSettings) -> HttpDialect:
    """The dialect these settings speak, with their ``auth_scheme`` applied."""
    dialect = settings.generic if settings.generic is not None else BUILT_IN[settings.dialect]
    if settings.auth_scheme:
        auth = dataclasses.replace(dialect.auth, scheme=settings.auth_scheme)
        dialect = dataclasses.replace(dialect, auth=auth)
    return dialect


def _problems(s: HttpSettings) -> list[str]:
    generic_ok = (s.dialect == "generic") == (s.generic is not None)
    checks = {
        f"unknown dialect {s.dialect!r}": s.dialect not in (*BUILT_IN, "generic"),
        'a "generic" table is needed with dialect "generic", and only then': not generic_ok,
        "base_url must start with http:// or https://": not s.base_url.startswith(
            ("http://", "https://")
        ),
        "concurrency, poll_concurrency and max_awaiting must be at least 1": min(
            s.concurrency, s.poll_concurrency, s.max_awaiting
        )
        < 1,
        "timeouts and poll_interval must be positive": min(_durations(s)) <= 0,
    }
    problems = [problem for problem, failed in checks.items() if failed]
    return problems or _dialect_problems(s, resolve_dialect(s))


def _durations(s: HttpSettings) -> tuple[float, ...]:
    poll = () if s.poll_interval is None else (s.poll_interval,)
    return (s.connect_timeout, s.request_timeout, s.close_timeout, *poll)


def _dialect_problems(s: HttpSettings, dialect: HttpDialect) -> list[str]:
    auth, signature = dialect.auth.kind, dialect.callback.signature
    used = {*placeholders(dialect.request.url), *placeholders(dialect.poll.url)}
    checks = {
        "account is needed by the URL": "account" in used and not s.account,
        "username is needed by basic auth": auth == "basic" and not s.username,
        "token is needed by the auth": auth in ("bearer", "header", "query") and not s.token,
        f"{signature.key} is needed to verify callbacks": signature.scheme != "none"
        and not s.callback_secret(dialect),
        "poll_interval is set but the dialect has no polling": s.poll_interval is not None
        and dialect.poll.mode == "none",
    }
    return [problem for problem, failed in checks.items() if failed]
