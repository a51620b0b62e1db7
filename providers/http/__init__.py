"""HTTP SMS providers with dialects as data: see ``providers.http.provider`` for how it works.

The names below load on first use, so that importing the pure modules (``spec``,
``render``, ``parse``, ``dialects``, ``settings``) never pulls in aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers.http.dialects import BUILT_IN
    from providers.http.parse import Callback, CallbackRejected
    from providers.http.provider import HttpProvider
    from providers.http.settings import HttpSettings
    from providers.http.spec import HttpDialect

__all__ = [
    "BUILT_IN",
    "Callback",
    "CallbackRejected",
    "HttpDialect",
    "HttpProvider",
    "HttpSettings",
]

_HOMES = {
    "BUILT_IN": "dialects",
    "Callback": "parse",
    "CallbackRejected": "parse",
    "HttpDialect": "spec",
    "HttpProvider": "provider",
    "HttpSettings": "settings",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"providers.http.{_HOMES[name]}"), name)
