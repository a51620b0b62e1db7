"""(placeholder: a helper fills this part of the admin)."""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
