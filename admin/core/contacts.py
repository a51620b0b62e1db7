"""One contact record (a CSV row or a CRM's JSON object) → a validated ``Contact`` (pure).

Every attribute has one parser in ``_PARSERS``; a parser takes the raw value (a CSV cell
or a JSON value) and returns the typed one, or raises ``ValueError`` with a message that
``parse_contact`` turns into ``InvalidContact`` naming the field. Empty values are
``None``: on upsert they keep what is stored, so a file with fewer columns never wipes
the others. Tags are added to the stored ones and custom fields merged key by key.

CSV headers are matched after normalising (lower case, ё → е, runs of spaces, dashes and
dots → ``_``) against ``HEADER_ALIASES``, Russian names included; a column that matches
nothing becomes a custom field of that name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from admin.core.timezones import timezone_for
from gateway.core.numbers import InvalidNumber, to_e164

MAX_TEXT = 200
MAX_TAGS = 100
MAX_TAG = 64
MAX_CUSTOM_JSON = 8192
MAX_SPEND = Decimal("1e12")
TAG_SPLIT = re.compile(r"[,;|]")


class InvalidContact(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message, self.field = message, field


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str
    timezone: str
    timezone_derived: bool = True
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    email: str | None = None
    city: str | None = None
    region: str | None = None
    gender: str | None = None
    birth_date: date | None = None
    signup_date: date | None = None
    source_site: str | None = None
    tags: tuple[str, ...] = ()
    subscribed: bool | None = None
    consent: bool | None = None
    consent_at: datetime | None = None
    consent_source: str | None = None
    last_purchase_at: datetime | None = None
    total_spend: Decimal | None = None
    purchases: int | None = None
    last_activity_at: datetime | None = None
    operator: str | None = None
    language: str | None = None
    loyalty_level: str | None = None
    external_id: str | None = None
    custom: Mapping[str, Any] = field(default_factory=dict)


# ---- value parsers: raw → typed, ValueError on bad input; None for empty ----------------


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


def text(raw: Any) -> str | None:
    if _blank(raw):
        return None
    if not isinstance(raw, str | int):
        raise ValueError("must be text")
    value = _no_nul(str(raw).strip())
    if len(value) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters")
    return value


def email(raw: Any) -> str | None:
    value = text(raw)
    if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError("not an e-mail address")
    return value.lower() if value else None


_TRUE = frozenset({"1", "да", "д", "yes", "y", "true", "t", "+", "on", "истина"})
_FALSE = frozenset({"0", "нет", "н", "no", "n", "false", "f", "-", "off", "ложь"})


def boolean(raw: Any) -> bool | None:
    if _blank(raw):
        return None
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("must be yes/no (да/нет, 1/0, true/false)")


_GENDERS = {
    "m": "m", "male": "m", "man": "m", "м": "m", "муж": "m", "мужской": "m", "мужчина": "m",
    "f": "f", "female": "f", "woman": "f", "ж": "f", "жен": "f", "женский": "f", "женщина": "f",
}  # fmt: skip


def gender(raw: Any) -> str | None:
    if _blank(raw):
        return None
    found = _GENDERS.get(str(raw).strip().lower().rstrip("."))
    if found is None:
        raise ValueError("must be m or f (м/ж)")
    return found


_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%d.%m.%y")


_RU_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


def calendar_date(raw: Any) -> date | None:
    if _blank(raw):
        return None
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    value = str(raw).strip()
    quick = _quick_date(value)
    if quick is not None:
        return _sane(quick)
    for fmt in _DATE_FORMATS:
        try:
            return _sane(datetime.strptime(value, fmt).date())
        except ValueError:
            continue
    raise ValueError("not a date (YYYY-MM-DD or DD.MM.YYYY)")


def _quick_date(value: str) -> date | None:
    """DD.MM.YYYY and YYYY-MM-DD without strptime (twenty times faster); None otherwise."""
    found = _RU_DATE.fullmatch(value)
    try:
        if found:
            return date(int(found[3]), int(found[2]), int(found[1]))
        return date.fromisoformat(value) if len(value) == 10 and value[4] == "-" else None
    except ValueError:
        return None


def _sane(day: date) -> date:
    if not 1900 <= day.year <= 2100:
        raise ValueError("year out of range (1900–2100)")
    return day


_MOMENT_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")


def moment(raw: Any) -> datetime | None:
    """A time stamp; a naive one, or a bare date, is taken as UTC."""
    if _blank(raw):
        return None
    value = str(raw).strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = _moment_ru(value)
    _sane(parsed.date())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _moment_ru(value: str) -> datetime:
    for fmt in _MOMENT_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    day = calendar_date(value)
    assert day is not None
    return datetime.combine(day, time())


def money(raw: Any) -> Decimal | None:
    if _blank(raw):
        return None
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    cleaned = re.sub(r"[\s\u00a0₽]|руб\.?", "", str(raw)).replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not value.is_finite() or not 0 <= value < MAX_SPEND:
        raise ValueError("must be between 0 and 10^12")
    return value.quantize(Decimal("0.01"))


def count(raw: Any) -> int | None:
    if _blank(raw):
        return None
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ValueError("must be a whole number")
    try:
        value = int(str(raw).strip()) if not isinstance(raw, float) else int(raw)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if not 0 <= value < 2**31:
        raise ValueError("must be between 0 and 2^31")
    return value


def tags(raw: Any) -> tuple[str, ...]:
    if _blank(raw):
        return ()
    items = raw if isinstance(raw, list) else TAG_SPLIT.split(str(raw))
    out = dict.fromkeys(_tag(item) for item in items if not _blank(item))
    if len(out) > MAX_TAGS:
        raise ValueError(f"more than {MAX_TAGS} tags")
    return tuple(out)


def _tag(item: Any) -> str:
    if not isinstance(item, str | int):
        raise ValueError("each tag must be text")
    value = str(item).strip()
    if len(value) > MAX_TAG or any(ord(ch) < 32 for ch in value):
        raise ValueError(f"a tag is longer than {MAX_TAG} characters or holds control characters")
    return value


def custom(raw: Any) -> dict[str, Any]:
    if _blank(raw):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValueError("not valid JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("must be a JSON object")
    encoded = json.dumps(raw, ensure_ascii=False)
    if len(encoded) > MAX_CUSTOM_JSON or "\\u0000" in encoded:
        raise ValueError(f"larger than {MAX_CUSTOM_JSON} bytes or holds a NUL")
    return raw


@lru_cache(maxsize=1024)
def zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone (e.g. Europe/Moscow)") from None
    return raw


def timezone(raw: Any) -> str | None:
    value = text(raw)
    return None if value is None else zone(value)


def language(raw: Any) -> str | None:
    value = text(raw)
    if value is not None and not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?", value):
        raise ValueError("not a language code (ru, en, ru-RU)")
    return value.lower() if value else None


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "first_name": text, "last_name": text, "middle_name": text, "email": email,
    "city": text, "region": text, "timezone": timezone, "gender": gender,
    "birth_date": calendar_date, "signup_date": calendar_date, "source_site": text,
    "tags": tags, "subscribed": boolean, "consent": boolean, "consent_at": moment,
    "consent_source": text, "last_purchase_at": moment, "total_spend": money,
    "purchases": count, "last_activity_at": moment, "operator": text,
    "language": language, "loyalty_level": text, "external_id": text, "custom": custom,
}  # fmt: skip
FIELDS = ("phone", *_PARSERS)
_KNOWN = frozenset(FIELDS)


# ---- a record → Contact ----------------------------------------------------------------


def parse_contact(record: Mapping[str, Any], default_region: str = "RU") -> Contact:
    """Validate one record; unknown keys are refused (a CRM's typo must not pass silently)."""
    unknown = sorted(record.keys() - _KNOWN)
    if unknown:
        raise InvalidContact("unknown field", unknown[0])
    phone = parse_phone(record.get("phone"), default_region)
    values = {name: _parse_field(name, record[name]) for name in _PARSERS if name in record}
    given_zone = values.pop("timezone", None)
    return Contact(
        phone=phone,
        timezone=given_zone or timezone_for(phone),
        timezone_derived=given_zone is None,
        **values,
    )


def parse_phone(raw: Any, default_region: str) -> str:
    if _blank(raw) or isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidContact("a phone number is required", "phone")
    try:
        return _russian_e164(str(raw), default_region) or to_e164(str(raw), default_region)
    except InvalidNumber as exc:
        raise InvalidContact(str(exc), "phone") from None


_RU_FORM = re.compile(r"(?:\+7|8|7)(\d{10})")
_PUNCTUATION = str.maketrans("", "", " -()\u00a0")


def _russian_e164(raw: str, default_region: str) -> str | None:
    """``to_e164`` for the everyday Russian forms (``8 921 …``, ``+7 (921) …``) without
    ``phonenumbers.parse``, the cost of most of an import; None for any other form."""
    match = _RU_FORM.fullmatch(raw.translate(_PUNCTUATION))
    if match is None or (default_region != "RU" and not raw.lstrip().startswith("+7")):
        return None
    if not phonenumbers.is_valid_number(phonenumbers.PhoneNumber(7, int(match.group(1)))):
        raise InvalidNumber("not a valid number for its country")
    return "+7" + match.group(1)


def _parse_field(name: str, raw: Any) -> Any:
    try:
        return _PARSERS[name](raw)
    except ValueError as exc:
        raise InvalidContact(str(exc), name) from None


# ---- CSV headers -----------------------------------------------------------------------

_ALIASES_BY_FIELD: dict[str, tuple[str, ...]] = {
    "phone": ("телефон", "номер", "номер_телефона", "мобильный", "моб_телефон", "msisdn",
              "mobile", "phone_number", "tel", "сотовый"),
    "first_name": ("имя", "name", "firstname"),
    "last_name": ("фамилия", "surname", "lastname"),
    "middle_name": ("отчество", "patronymic"),
    "email": ("e_mail", "почта", "эл_почта", "электронная_почта", "mail"),
    "city": ("город",),
    "region": ("регион", "область", "субъект"),
    "timezone": ("часовой_пояс", "tz", "time_zone"),
    "gender": ("пол", "sex"),
    "birth_date": ("дата_рождения", "день_рождения", "birthday", "birthdate", "dob"),
    "signup_date": ("дата_регистрации", "регистрация", "registered", "signup"),
    "source_site": ("сайт", "источник", "source", "site"),
    "tags": ("теги", "метки", "тэги", "tag"),
    "subscribed": ("подписка", "подписан", "subscription"),
    "consent": ("согласие", "согласие_на_рассылку", "opt_in"),
    "consent_at": ("дата_согласия",),
    "consent_source": ("источник_согласия",),
    "last_purchase_at": ("последняя_покупка", "дата_последней_покупки", "last_purchase"),
    "total_spend": ("сумма_покупок", "сумма", "ltv", "spend"),
    "purchases": ("количество_покупок", "покупки", "покупок", "orders"),
    "last_activity_at": ("последняя_активность", "last_activity", "last_seen"),
    "operator": ("оператор", "carrier"),
    "language": ("язык", "lang"),
    "loyalty_level": ("уровень_лояльности", "лояльность", "loyalty", "уровень"),
    "external_id": ("id_crm", "crm_id", "внешний_id", "client_id", "id_клиента"),
    "custom": ("доп_поля", "дополнительно", "custom_fields"),
}  # fmt: skip

HEADER_ALIASES: dict[str, str] = {
    alias: name for name, aliases in _ALIASES_BY_FIELD.items() for alias in (name, *aliases)
}
CUSTOM_PREFIX = "custom."


def normalise_header(header: str) -> str:
    lowered = header.strip().lstrip("\ufeff").lower().replace("ё", "е")
    return re.sub(r"[\s\-.]+", "_", lowered).strip("_")


def map_columns(headers: Sequence[str]) -> tuple[str, ...]:
    """Each column's field (or ``custom.<name>``); raises InvalidContact on a bad header."""
    mapped = tuple(_column(header) for header in headers)
    if "phone" not in mapped:
        raise InvalidContact("no phone column (Телефон / phone)", "phone")
    seen: set[str] = set()
    for header, name in zip(headers, mapped, strict=True):
        if name in seen:
            raise InvalidContact(f"two columns map to {name} (one is {header!r})", name)
        seen.add(name)
    return mapped


def _column(header: str) -> str:
    key = normalise_header(header)
    if not key:
        raise InvalidContact("a column has no header", "header")
    return HEADER_ALIASES.get(key) or CUSTOM_PREFIX + key


def row_record(columns: Sequence[str], row: Sequence[str]) -> dict[str, Any]:
    """A CSV row as a record for ``parse_contact``: ``custom.*`` cells fold into ``custom``."""
    record: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, cell in zip(columns, row, strict=False):
        if name.startswith(CUSTOM_PREFIX):
            if cell.strip():
                extra[name.removeprefix(CUSTOM_PREFIX)] = custom_cell(cell)
        else:
            record[name] = cell
    if extra:
        record["custom"] = {**_parse_field("custom", record.get("custom")), **extra}
    return record


_NUMBER = re.compile(r"-?(0|[1-9]\d{0,14})([.,]\d{1,6})?")


def custom_cell(cell: str) -> str | int | float:
    """A CSV cell of a custom column: a number stays a number (so audiences can compare it
    with > and <), anything else text; ``007`` is a code, not a number."""
    value = cell.strip()
    if not _NUMBER.fullmatch(value):
        return value
    return float(value.replace(",", ".")) if "." in value or "," in value else int(value)
