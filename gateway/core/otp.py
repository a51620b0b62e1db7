"""One-time passwords (NIST SP 800-63B §5.1.3, out-of-band codes). Pure.

Theory of operation. A challenge is one code sent to one number. The code comes from
``secrets`` (a CSPRNG) and is never stored: the row keeps ``HMAC-SHA256(pepper + salt,
id:code)``, with a fresh random salt per challenge and the server's ``otp_secret`` as
the pepper when one is configured (then a copy of the database alone does not let anyone
try codes offline). A check compares in constant time (``hmac.compare_digest``).

``check`` is the whole lifecycle, a function of the stored state and the clock: a
challenge is ``pending`` until it is verified (once: a second use is refused), expires,
is superseded by a newer one to the same number, or has used up its tries; every check
of a pending challenge, right or wrong, spends one try, so tries never exceed
``max_tries``, and the one that spends the last wrong try locks it. The store applies
``check`` under a row lock, so concurrent checks are serialised and a code verifies once.

Pumping (fraudulent traffic to premium ranges, "SMS toll fraud") is fought by
``windows_for``: every send is counted per destination, per number range (the first
``prefix_digits`` digits: sequential numbers share it), per client IP, and per country
per UTC day; the counters live in Redis (``adapters/otp_store``) and a send over any of
them is refused with the limit named.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.core.errors import FieldError

CODE_PLACEHOLDER = "{code}"
MIN_LENGTH, MAX_LENGTH = 4, 10
MIN_TTL_S = 30  # the message's validity is the code's: the API refuses less than 30 s
MAX_TEMPLATE = 400
REQUEST_FIELDS = frozenset({"to", "text", "from", "ttl", "length", "client_ref", "ip"})


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` sends in any ``seconds`` (sliding)."""

    limit: int
    seconds: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.seconds < 1:
            raise ValueError("limit and seconds must be positive")


@dataclass(frozen=True)
class OtpSettings:
    """``[otp]`` in the config file; the pepper is the top-level ``otp_secret``."""

    length: int = 6
    ttl_s: int = 300
    max_ttl_s: int = 900
    max_tries: int = 5
    text: str = "Your code: {code}"
    per_destination: tuple[Window, ...] = (Window(1, 30), Window(3, 600), Window(10, 86400))
    prefix_digits: int = 8  # of the E.164 number without "+": +7921123 4xxx is one range
    per_prefix: tuple[Window, ...] = (Window(20, 600), Window(100, 86400))
    per_ip: tuple[Window, ...] = (Window(10, 600), Window(50, 86400))
    country_daily: Mapping[str, int] = field(default_factory=dict)  # {"RU": 5000, ...}
    default_country_daily: int = 1000  # for countries not listed

    def __post_init__(self) -> None:
        if not MIN_LENGTH <= self.length <= MAX_LENGTH:
            raise ValueError(f"length must be {MIN_LENGTH} to {MAX_LENGTH}")
        if not MIN_TTL_S <= self.ttl_s <= self.max_ttl_s:
            raise ValueError(f"ttl_s must be {MIN_TTL_S} to max_ttl_s")
        if not 1 <= self.max_tries <= 20 or not 3 <= self.prefix_digits <= 10:
            raise ValueError("max_tries must be 1 to 20 and prefix_digits 3 to 10")
        if template_error(self.text) is not None:
            raise ValueError(f"text: {template_error(self.text)}")
        if any(v < 0 for v in self.country_daily.values()) or self.default_country_daily < 0:
            raise ValueError("country caps must not be negative")
        if not all(len(c) == 2 and c.isascii() and c.isupper() for c in self.country_daily):
            raise ValueError("country_daily keys are ISO regions, e.g. RU, KZ")


# --- codes ------------------------------------------------------------------------------


def new_code(length: int) -> str:
    """``length`` decimal digits, uniform, from the OS CSPRNG."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def new_salt() -> bytes:
    return secrets.token_bytes(16)


def code_hash(pepper: bytes, salt: bytes, challenge_id: int, code: str) -> bytes:
    """The stored form of a code; bound to its challenge, so a hash cannot be moved."""
    return hmac.new(pepper + salt, f"{challenge_id}:{code}".encode(), hashlib.sha256).digest()


def render(template: str, code: str) -> str:
    """The message text: the template with its placeholder replaced (no ``str.format``:
    a client's braces are text, not fields)."""
    return template.replace(CODE_PLACEHOLDER, code)


def template_error(template: str) -> str | None:
    if template.count(CODE_PLACEHOLDER) != 1:
        return f"must contain {CODE_PLACEHOLDER} exactly once"
    if len(template) > MAX_TEMPLATE:
        return f"longer than {MAX_TEMPLATE} characters"
    return None


# --- the challenge lifecycle ------------------------------------------------------------


class State(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    LOCKED = "locked"
    SUPERSEDED = "superseded"


class Outcome(enum.StrEnum):
    VERIFIED = "verified"  # 200
    WRONG = "wrong"  # 422, tries left
    EXPIRED = "expired"  # 410
    USED = "used"  # 410: verified before, or superseded by a newer code
    LOCKED = "locked"  # 423: no tries left


@dataclass(frozen=True, slots=True)
class Challenge:
    id: int
    salt: bytes
    code_hash: bytes
    expires_at: datetime
    tries: int
    max_tries: int
    state: State

    @property
    def tries_left(self) -> int:
        return max(0, self.max_tries - self.tries)


@dataclass(frozen=True, slots=True)
class Checked:
    outcome: Outcome
    challenge: Challenge  # the state to store (unchanged when nothing was spent)


def check(challenge: Challenge, code: str, now: datetime, pepper: bytes) -> Checked:
    """Decide one check; the only way a challenge changes after it is created."""
    refused = _refusal(challenge, now)
    if refused is not None:
        return Checked(refused, challenge)
    tried = replace(challenge, tries=challenge.tries + 1)
    expected = code_hash(pepper, challenge.salt, challenge.id, code)
    if hmac.compare_digest(expected, challenge.code_hash):
        return Checked(Outcome.VERIFIED, replace(tried, state=State.VERIFIED))
    if tried.tries >= tried.max_tries:
        return Checked(Outcome.LOCKED, replace(tried, state=State.LOCKED))
    return Checked(Outcome.WRONG, tried)


def _refusal(challenge: Challenge, now: datetime) -> Outcome | None:
    if challenge.state in (State.VERIFIED, State.SUPERSEDED):
        return Outcome.USED
    if challenge.state is State.LOCKED or challenge.tries >= challenge.max_tries:
        return Outcome.LOCKED
    if now >= challenge.expires_at:
        return Outcome.EXPIRED
    return None


def expiry(now: datetime, ttl_s: int) -> datetime:
    return now + timedelta(seconds=ttl_s)


# --- pumping protection -----------------------------------------------------------------


class Reason(enum.StrEnum):
    """Which counter refused a send: the ``limit`` of the 429 and the metric's label."""

    DESTINATION = "otp_destination"
    PREFIX = "otp_prefix"
    IP = "otp_ip"
    COUNTRY = "otp_country_daily"


@dataclass(frozen=True, slots=True)
class Counter:
    """One counter a send must fit in. ``seconds`` 0: the UTC day (a calendar cap)."""

    reason: Reason
    subject: str  # the number, range, IP or country counted (never a metric label)
    limit: int
    seconds: int


def prefix_of(destination: str, digits: int) -> str:
    return destination.lstrip("+")[:digits]


def windows_for(
    settings: OtpSettings, destination: str, country: str, ip: str | None
) -> list[Counter]:
    """Every counter one send to ``destination`` (from ``ip``) is counted in."""
    counters = [Counter(Reason.DESTINATION, destination, w.limit, w.seconds)
                for w in settings.per_destination]  # fmt: skip
    prefix = prefix_of(destination, settings.prefix_digits)
    counters += [Counter(Reason.PREFIX, prefix, w.limit, w.seconds) for w in settings.per_prefix]
    if ip is not None:
        counters += [Counter(Reason.IP, ip, w.limit, w.seconds) for w in settings.per_ip]
    cap = settings.country_daily.get(country, settings.default_country_daily)
    counters.append(Counter(Reason.COUNTRY, country, cap, 0))
    return counters


# --- the request ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OtpRequest:
    """``POST /v1/otp`` validated; ``to`` is still raw (the message validation parses it)."""

    to: str
    text: str
    sender: str | None
    ttl_s: int
    length: int
    client_ref: str | None
    ip: str | None


class InvalidOtp(Exception):
    def __init__(self, error: FieldError) -> None:
        super().__init__(f"{error.field}: {error.message}")
        self.error = error


def _fail(field: str, message: str, code: str = "invalid") -> InvalidOtp:
    return InvalidOtp(FieldError(field, message, code))


def parse_request(data: Any, settings: OtpSettings) -> OtpRequest:
    """Validate the body of ``POST /v1/otp``; raises ``InvalidOtp`` naming the field."""
    if not isinstance(data, Mapping):
        raise _fail("body", "must be a JSON object")
    unknown = sorted(set(data) - REQUEST_FIELDS)
    if unknown:
        raise _fail(unknown[0] or '""', "unknown field", "unknown_field")
    to = data.get("to")
    if not isinstance(to, str):
        raise _fail("to", "required, a phone number string", "required")
    return OtpRequest(
        to=to,
        text=_template(data.get("text", settings.text)),
        sender=_optional_str(data.get("from"), "from"),
        ttl_s=_int(data.get("ttl", settings.ttl_s), "ttl", MIN_TTL_S, settings.max_ttl_s),
        length=_int(data.get("length", settings.length), "length", MIN_LENGTH, MAX_LENGTH),
        client_ref=_client_ref(data.get("client_ref")),
        ip=_ip(data.get("ip")),
    )


def _template(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("text", f"a string containing {CODE_PLACEHOLDER}")
    error = template_error(value)
    if error is not None:
        raise _fail("text", error)
    return value


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(field, f"an integer from {low} to {high}")
    return value


def _optional_str(value: Any, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(field, "a string")
    return value


def _client_ref(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or "\x00" in value:
        raise _fail("client_ref", "a string of 1 to 128 characters")
    return value


def _ip(value: Any) -> str | None:
    """The end user's address as the calling site saw it (normalised: one key per IP)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise _fail("ip", "an IPv4 or IPv6 address")
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise _fail("ip", "an IPv4 or IPv6 address") from None
    return ip_subject(address)


def ip_subject(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """IPv6 is counted per /64 (one subscriber's block), IPv4 per address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def parse_code(value: Any) -> str:
    """The code of a check as typed: digits only (spaces and dashes dropped)."""
    if not isinstance(value, str) or len(value) > 32:
        raise _fail(
            "code", "the code, a string of digits", "required" if value is None else "invalid"
        )
    digits = value.replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit()) or not MIN_LENGTH <= len(digits) <= MAX_LENGTH:
        raise _fail("code", f"{MIN_LENGTH} to {MAX_LENGTH} digits")
    return digits


def mask_ip(subject: str) -> str:
    """For logs: an IPv4 address without its last octet, an IPv6 network as it is (/64)."""
    head, _, _ = subject.rpartition(".")
    return f"{head}.*" if head and ":" not in subject else subject
