"""Sessions, CSRF and permissions.

A session is a random token in an HttpOnly, SameSite=Strict cookie; only its hash is
stored. Every unsafe request on a session must carry the session's CSRF token (the
``_csrf`` form field or the ``X-CSRF-Token`` header): SameSite alone does not cover old
browsers or a same-site attacker. Systems (the CRM, the conversions feed) use Bearer API
tokens on ``/v1/`` instead, which no browser sends by itself, so they need no CSRF token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from yarl import URL

from admin.adapters import audit_store, user_store
from admin.adapters.user_store import Token, User
from admin.core.roles import TOKEN_GRANTS, Permission, can
from admin.http.errors import AdminError, Handler, wants_json
from admin.http.keys import ADMIN, SESSION, SESSION_COOKIE, session_of

log = logging.getLogger("admin.auth")

PUBLIC = ("/login", "/static/", "/l/", "/v1/", "/health")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN: web.RequestKey[Token] = web.RequestKey("admin.token")


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    cookie = request.cookies.get(SESSION_COOKIE)
    found = await user_store.session(request.app[ADMIN].pool, cookie) if cookie else None
    request[SESSION] = found
    if found is None and not request.path.startswith(PUBLIC):
        if wants_json(request):
            raise AdminError("log in first", None, 401, "unauthenticated")
        raise web.HTTPFound(f"/login?next={request.path_qs}" if request.path != "/" else "/login")
    if request.method in UNSAFE and not request.path.startswith(("/v1/", "/l/")):
        _check_origin(request)  # covers the log-in form too, which has no session yet
        if found is not None:
            await _check_csrf(request, found.csrf)
    return await handler(request)


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and URL(origin).host_port_subcomponent != request.host:
        raise AdminError("cross-site request refused", "Origin", 403, "csrf")


async def _check_csrf(request: web.Request, expected: str) -> None:
    # Uploads (multipart) are streamed by their handler: their token comes in the header
    # (admin.js fetchJSON sends it) or the query string, so the body is not read here.
    presented = request.headers.get("X-CSRF-Token") or request.query.get("_csrf")
    if presented is None and request.content_type == "application/x-www-form-urlencoded":
        presented = (await request.post()).get("_csrf")  # type: ignore[assignment]
    if not isinstance(presented, str) or not hmac.compare_digest(presented, expected):
        raise AdminError("the form is stale or forged (CSRF token)", "_csrf", 403, "csrf")


async def require(request: web.Request, permission: Permission) -> User:
    """The logged-in user, if their role may; 403 otherwise (the refusal is logged)."""
    found = session_of(request)
    if found is None:
        raise AdminError("log in first", None, 401, "unauthenticated")
    if not can(found.user.role, permission):
        log.info("refused %s to user %d (%s)", permission.value, found.user.id, found.user.role)
        raise AdminError(
            f"your role ({found.user.role}) may not do this ({permission.value})",
            None,
            403,
            "forbidden",
        )
    return found.user


async def require_token(request: web.Request, permission: Permission) -> Token:
    """The API token presented as ``Authorization: Bearer``, if it grants ``permission``."""
    header = request.headers.get("Authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else ""
    found = await user_store.token(request.app[ADMIN].pool, presented) if presented else None
    if found is None:
        raise AdminError("a valid API token is required (Bearer)", "token", 401, "unauthenticated")
    if permission not in TOKEN_GRANTS:
        raise AdminError("API tokens may not do this", None, 403, "forbidden")
    request[TOKEN] = found
    return found


def client_ip(request: web.Request) -> str:
    return request.remote or ""


async def audit(
    request: web.Request, action: str, target: str = "", detail: Mapping[str, Any] | None = None
) -> None:
    """One audit row for the current user or token: who, what, on what, from where."""
    found, token = session_of(request), request.get(TOKEN)
    user_id, actor = (found.user.id, found.user.email) if found else (None, "")
    if token is not None:
        actor = f"token:{token.name}"
    entry = audit_store.Entry(user_id, actor, action, target, detail or {}, client_ip(request))
    await audit_store.write(request.app[ADMIN].pool, entry)
