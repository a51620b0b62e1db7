"""The route table from its configuration (the parsed TOML), refusing bad keys by name.

Theory of operation. ``load_table`` reads the ``[[routes]]`` list and the ``[routing]``
table of a parsed TOML document (other keys are ignored: they belong to the gateway),
checks every key and value, and raises ``RouteConfigError`` naming the first bad one by
its dotted path (``routes[2].price_per_part``), so that a typo stops the start or the
reload instead of misrouting traffic. Provider names are checked against the configured
providers. Two entries of one provider that would tie for the same destination and
class are refused: which one applies must never depend on the order of the file. Pure.

    [routing]
    wait_for_price = ["bulk"]      # classes that wait for the cheapest route (never "otp")
    max_route_attempts = 3         # routes tried per message on temporary failures
    [routing.breaker]
    window_s = 60
    min_events = 20
    error_rate = 0.5
    min_receipts = 50
    min_delivered_ratio = 0.2
    cool_down_s = 30
    probes = 3
    [routing.ported]               # numbers that left the operator their range belongs to
    "+79031234567" = "MTS"
    [routing.operator_aliases]     # more names for operators (Tele2, МТС... are built in)
    "Tele2 Russia" = "T2"

    [[routes]]
    provider = "mts"
    operators = ["MTS"]            # or prefixes = ["+7916"], or countries = ["RU"] / ["*"]
    countries = ["RU"]             # with operators: only within these countries
    price_per_part = "0.35"        # a string keeps the decimal exact
    classes = ["otp", "transactional", "bulk"]   # default: all
    weight = 1                     # share among routes of equal price
    senders = ["ACME", "Shop*"]    # accepted senders (glob); default: any
    numeric_sender = "79001234567" # route needs numeric senders: alphanumeric become this
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import phonenumbers

from routing.destinations import BUILTIN_ALIASES, Resolver, operator_key
from routing.table import ANY_COUNTRY, CLASSES, BreakerSettings, Policy, RouteEntry, RouteTable

T = TypeVar("T")

ROUTE_KEYS = frozenset(
    {
        "provider",
        "prefixes",
        "countries",
        "operators",
        "price_per_part",
        "classes",
        "weight",
        "senders",
        "numeric_sender",
    }
)
ROUTING_KEYS = frozenset(
    {"wait_for_price", "max_route_attempts", "breaker", "ported", "operator_aliases"}
)
_PREFIX = re.compile(r"\+\d{0,15}")
_NUMBER = re.compile(r"\+\d{6,15}")
_NUMERIC_SENDER = re.compile(r"\+?\d{1,15}")
_RATIOS = frozenset({"error_rate", "min_delivered_ratio"})


class RouteConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def load_table(data: Mapping[str, Any], providers: Collection[str]) -> RouteTable:
    """The route table from a parsed TOML document; raises RouteConfigError."""
    routing = _table(data.get("routing", {}), "routing", ROUTING_KEYS)
    aliases = {**BUILTIN_ALIASES, **_aliases(routing.get("operator_aliases", {}))}
    raw = data.get("routes", [])
    if not isinstance(raw, list):
        raise RouteConfigError("routes", "must be a list of tables ([[routes]])")
    entries = tuple(parse_entry(r, f"routes[{i}]", providers, aliases) for i, r in enumerate(raw))
    check_ties(entries)
    ported = _ported(routing.get("ported", {}), aliases)
    return RouteTable.build(entries, parse_policy(routing), Resolver(ported, aliases))


# --- [[routes]] ------------------------------------------------------------------------
def parse_entry(
    data: Any, key: str, providers: Collection[str], aliases: Mapping[str, str]
) -> RouteEntry:
    raw = _table(data, key, ROUTE_KEYS)
    provider = _str(_required(raw, "provider", key), f"{key}.provider")
    if provider not in providers:
        known = ", ".join(sorted(providers)) or "none configured"
        raise RouteConfigError(f"{key}.provider", f"unknown provider {provider!r} ({known})")
    fields = {
        name: _ENTRY_FIELDS[name](value, f"{key}.{name}")
        for name, value in raw.items()
        if name in _ENTRY_FIELDS
    }
    fields["operators"] = tuple(operator_key(o, aliases) for o in fields.get("operators", ()))
    fields["price_per_part"] = _decimal(
        _required(raw, "price_per_part", key), f"{key}.price_per_part"
    )
    _check_selectors(fields, key)
    return RouteEntry(provider=provider, name=key, **fields)


def _check_selectors(fields: Mapping[str, Any], key: str) -> None:
    given = [name for name in ("prefixes", "countries", "operators") if fields.get(name)]
    if not given:
        raise RouteConfigError(key, "needs prefixes, countries or operators")
    if len(given) > 1 and given != ["countries", "operators"]:
        raise RouteConfigError(
            f"{key}.{given[1]}", f"cannot be combined with {given[0]} (only operators may be)"
        )


def _prefixes(value: Any, key: str) -> tuple[str, ...]:
    return _list(value, key, lambda v, k: _match(_PREFIX, v, k, 'an E.164 prefix like "+7916"'))


def _countries(value: Any, key: str) -> tuple[str, ...]:
    return _list(value, key, _country)


def _country(value: Any, key: str) -> str:
    code = _str(value, key).upper()
    if code != ANY_COUNTRY and code not in phonenumbers.SUPPORTED_REGIONS:
        raise RouteConfigError(key, f'unknown country {value!r} (ISO codes like "RU", or "*")')
    return code


def _classes(value: Any, key: str) -> frozenset[str]:
    classes = frozenset(_list(value, key, _klass))
    if not classes:
        raise RouteConfigError(key, "must name at least one class")
    return classes


def _klass(value: Any, key: str) -> str:
    if value not in CLASSES:
        raise RouteConfigError(key, f"one of {', '.join(CLASSES)}")
    return str(value)


def _weight(value: Any, key: str) -> int:
    weight = _int(value, key)
    if weight < 1:
        raise RouteConfigError(key, "must be at least 1")
    return weight


def _numeric_sender(value: Any, key: str) -> str:
    return _match(_NUMERIC_SENDER, value, key, "must be a numeric sender (digits, up to 15)")


_ENTRY_FIELDS: Mapping[str, Callable[[Any, str], Any]] = {
    "prefixes": _prefixes,
    "countries": _countries,
    "operators": lambda v, k: _list(v, k, _str),
    "classes": _classes,
    "weight": _weight,
    "senders": lambda v, k: _list(v, k, _str),
    "numeric_sender": _numeric_sender,
}


def check_ties(entries: tuple[RouteEntry, ...]) -> None:
    """Refuse two entries of one provider matching the same way for the same class."""
    seen: dict[tuple[str, ...], str] = {}
    for entry in entries:
        for field, value, tie in _selector_keys(entry):
            for klass in sorted(entry.classes):
                other = seen.setdefault((entry.provider, klass, *tie), entry.name)
                if other != entry.name:
                    raise RouteConfigError(
                        f"{entry.name}.{field}",
                        f"{value} already routes {klass} to {entry.provider} in {other}",
                    )


def _selector_keys(entry: RouteEntry) -> list[tuple[str, str, tuple[str, ...]]]:
    if entry.operators:
        where = ",".join(sorted(entry.countries))
        return [("operators", o, ("operator", o, where)) for o in entry.operators]
    catch_all: tuple[str, ...] = ("any",)
    keys: list[tuple[str, str, tuple[str, ...]]] = [
        ("prefixes", p, ("prefix", p) if p != "+" else catch_all) for p in entry.prefixes
    ]
    keys += [
        ("countries", c, ("country", c) if c != ANY_COUNTRY else catch_all) for c in entry.countries
    ]
    return keys


# --- [routing] -------------------------------------------------------------------------
def parse_policy(routing: Mapping[str, Any]) -> Policy:
    defaults = Policy()
    wait = defaults.wait_for_price
    if "wait_for_price" in routing:
        wait = frozenset(_list(routing["wait_for_price"], "routing.wait_for_price", _waiter))
    attempts = defaults.max_route_attempts
    if "max_route_attempts" in routing:
        attempts = _int(routing["max_route_attempts"], "routing.max_route_attempts")
        if attempts < 1:
            raise RouteConfigError("routing.max_route_attempts", "must be at least 1")
    return Policy(wait, attempts, parse_breaker(routing.get("breaker", {})))


def _waiter(value: Any, key: str) -> str:
    if value == "otp":
        raise RouteConfigError(key, "otp never waits for price")
    return _klass(value, key)


def parse_breaker(data: Any, key: str = "routing.breaker") -> BreakerSettings:
    defaults = {f.name: f.default for f in dataclasses.fields(BreakerSettings)}
    raw = _table(data, key, frozenset(defaults))
    values: dict[str, Any] = {
        name: _breaker_value(v, defaults[name], f"{key}.{name}") for name, v in raw.items()
    }
    return BreakerSettings(**values)


def _breaker_value(value: Any, default: Any, key: str) -> float | int:
    number = _int(value, key) if isinstance(default, int) else _number(value, key)
    if number <= 0:
        raise RouteConfigError(key, "must be positive")
    if key.rsplit(".", 1)[-1] in _RATIOS and number > 1:
        raise RouteConfigError(key, "must be a ratio between 0 and 1")
    return number


def _ported(data: Any, aliases: Mapping[str, str]) -> dict[str, str]:
    raw = _table(data, "routing.ported")
    ported = {}
    for number, operator in raw.items():
        key = f"routing.ported.{number}"
        _match(_NUMBER, number, key, 'keys must be E.164 numbers like "+79031234567"')
        ported[number] = operator_key(_str(operator, key), aliases)
    return ported


def _aliases(data: Any) -> dict[str, str]:
    raw = _table(data, "routing.operator_aliases")
    keys = {name: f"routing.operator_aliases.{name}" for name in raw}
    return {operator_key(n): operator_key(_str(v, keys[n])) for n, v in raw.items()}


# --- scalars ---------------------------------------------------------------------------
def _table(value: Any, key: str, known: frozenset[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RouteConfigError(key, "must be a table")
    unknown = sorted(set(value) - known) if known is not None else []
    if unknown:
        raise RouteConfigError(f"{key}.{unknown[0]}", "unknown key")
    return value


def _required(raw: Mapping[str, Any], name: str, key: str) -> Any:
    if name not in raw:
        raise RouteConfigError(f"{key}.{name}", "required")
    return raw[name]


def _list(value: Any, key: str, item: Callable[[Any, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise RouteConfigError(key, "must be a list")
    return tuple(item(v, f"{key}[{i}]") for i, v in enumerate(value))


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise RouteConfigError(key, "must be a non-empty string")
    return value


def _match(pattern: re.Pattern[str], value: Any, key: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise RouteConfigError(key, what)
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RouteConfigError(key, "must be an integer")
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RouteConfigError(key, "must be a number")
    return float(value)


def _decimal(value: Any, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RouteConfigError(key, 'must be a decimal (a string like "0.35" keeps it exact)')
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise RouteConfigError(key, "must be a decimal") from None
    if not price.is_finite() or price < 0:
        raise RouteConfigError(key, "must be a finite, non-negative decimal")
    return price
