"""Build frozen settings dataclasses from TOML tables, refusing unknown keys and bad values.

Every error names the key by its dotted path (``providers[0].window``) so that a typo in
a config file is caught at start, not after the first message. Pure: no IO.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections import abc
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")


class ConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def build(cls: type[T], data: Any, path: str) -> T:
    """Construct dataclass ``cls`` from a mapping, checking every key and value."""
    if not isinstance(data, Mapping):
        raise ConfigError(path or "(top)", "must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(_join(path, unknown[0]), "unknown key")
    hints = typing.get_type_hints(cls)
    values = {name: convert(hints[name], data[name], _join(path, name)) for name in data}
    missing = [n for n, f in fields.items() if n not in values and _required(f)]
    if missing:
        raise ConfigError(_join(path, missing[0]), "required")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(path or "(top)", str(exc)) from None


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def convert(hint: Any, value: Any, key: str) -> Any:
    """Check and convert one value against its type hint."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return _convert_union(get_args(hint), value, key)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(key, f"one of {', '.join(map(str, get_args(hint)))}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(key, "must be a list")
        item = get_args(hint)[0]
        return tuple(convert(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)  # type: ignore[arg-type]
    if origin in (dict, Mapping, abc.Mapping):
        return _convert_mapping(get_args(hint), value, key)
    return _convert_scalar(hint, value, key)


def _convert_mapping(args: tuple[Any, ...], value: Any, key: str) -> dict[Any, Any]:
    """A TOML table with free-form keys (a status map, a ported-number table)."""
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must be a table")
    key_hint, value_hint = args
    return {
        convert(key_hint, k, f"{key}.{k}"): convert(value_hint, v, f"{key}.{k}")
        for k, v in value.items()
    }


def _convert_union(options: tuple[Any, ...], value: Any, key: str) -> Any:
    if value is None and type(None) in options:
        return None
    errors = []
    for option in (o for o in options if o is not type(None)):
        try:
            return convert(option, value, key)
        except ConfigError as exc:
            errors.append(str(exc).split(": ", 1)[-1])
    raise ConfigError(key, " or ".join(errors))


def _convert_scalar(hint: Any, value: Any, key: str) -> Any:
    converter = _SCALARS.get(hint)
    if converter is not None:
        return converter(value, key)
    if isinstance(hint, type) and hasattr(hint, "from_config"):
        return hint.from_config(_string(value, key))
    raise ConfigError(key, f"unsupported setting type {hint!r}")


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, "must be an integer")
    return value


def _float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, "must be a number")
    return float(value)


def _path(value: Any, key: str) -> Path:
    return Path(_string(value, key))


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    return value


def _decimal(value: Any, key: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, 'must be a decimal number (a string like "0.35" keeps it exact)')
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(key, "must be a decimal number") from None
    if not result.is_finite() or result < 0:
        raise ConfigError(key, "must be a finite, non-negative number")
    return result


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    bool: _bool,
    int: _int,
    float: _float,
    Decimal: _decimal,
    Path: _path,
    str: _string,
}
