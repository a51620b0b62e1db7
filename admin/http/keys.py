"""Typed keys of the admin's aiohttp application and requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from admin.adapters.user_store import Session
    from admin.app import Admin

ADMIN: web.AppKey[Admin] = web.AppKey("admin")
SESSION_COOKIE = "smsgw_admin"
# The logged-in Session of a request; absent or None when there is none.
SESSION: web.RequestKey[Session | None] = web.RequestKey("admin.session")


def session_of(request: web.Request) -> Session | None:
    return request.get(SESSION)
