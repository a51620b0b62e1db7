"""Log-in, log-out, the home page, users (admins) and the audit log (admins)."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from admin.adapters import audit_store, user_store
from admin.core import passwords
from admin.core.roles import Permission, Role, parse_role
from admin.http.auth import audit, client_ip, require
from admin.http.errors import AdminError
from admin.http.keys import ADMIN, SESSION_COOKIE, session_of
from admin.http.render import render

log = logging.getLogger("admin.auth")
FAILURE_WINDOW = timedelta(minutes=15)


async def get_login(request: web.Request) -> web.Response:
    return render(request, "login.html", next=_next(request), error=None)


async def post_login(request: web.Request) -> web.Response:
    form = await request.post()
    email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
    admin = request.app[ADMIN]
    keys = [f"email:{email.lower()}", f"ip:{client_ip(request)}"]
    if await user_store.recent_failures(admin.pool, keys, FAILURE_WINDOW) >= (
        admin.settings.login_attempts
    ):
        return _login_refused(request, "too many failed attempts; try again in 15 minutes", 429)
    found = await user_store.credentials(admin.pool, email)
    stored = found[1] if found else passwords.DUMMY_HASH
    if found is None or not passwords.verify(stored, password):
        await user_store.note_failure(admin.pool, keys)
        return _login_refused(request, "wrong e-mail or password", 401)
    user = found[0]
    if passwords.needs_rehash(stored):
        await user_store.set_password(admin.pool, user.id, passwords.hash_password(password))
    ttl = timedelta(hours=admin.settings.session_ttl_h)
    token, _ = await user_store.open_session(admin.pool, user, client_ip(request), ttl)
    log.info("user %d logged in", user.id)
    reply = web.HTTPFound(_next(request, str(form.get("next", "")) or None))
    reply.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ttl.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=admin.settings.secure_cookies,
        path="/",
    )
    raise reply


def _login_refused(request: web.Request, message: str, status: int) -> web.Response:
    return render(request, "login.html", status=status, next=_next(request), error=message)


def _next(request: web.Request, value: str | None = None) -> str:
    """Where to go after log-in: a local path only (no open redirect)."""
    target = value or request.query.get("next", "/")
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def post_logout(request: web.Request) -> web.Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await user_store.close_session(request.app[ADMIN].pool, cookie)
    reply = web.HTTPFound("/login")
    reply.del_cookie(SESSION_COOKIE, path="/")
    raise reply


async def home(request: web.Request) -> web.Response:
    return render(request, "home.html")


async def get_users(request: web.Request) -> web.Response:
    await require(request, Permission.users)
    users = await user_store.list_users(request.app[ADMIN].pool)
    return render(request, "users.html", users=users, roles=[r.value for r in Role])


async def post_user(request: web.Request) -> web.Response:
    await require(request, Permission.users)
    form = await request.post()
    email, name = str(form.get("email", "")).strip(), str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    if "@" not in email:
        raise AdminError("an e-mail address", "email")
    try:
        role = parse_role(str(form.get("role", "")))
    except ValueError as exc:
        raise AdminError(str(exc), "role") from None
    weak = passwords.weakness(password)
    if weak:
        raise AdminError(f"password: {weak}", "password")
    pool = request.app[ADMIN].pool
    if await user_store.credentials(pool, email) is not None:
        raise AdminError("a user with this e-mail exists", "email", 409, "conflict")
    user = await user_store.create_user(pool, email, name, role, passwords.hash_password(password))
    await audit(request, "user.create", f"user:{user.id}", {"role": role.value})
    raise web.HTTPFound("/users")


async def post_user_active(request: web.Request) -> web.Response:
    me = await require(request, Permission.users)
    user_id = int(request.match_info["id"])
    active = (await request.post()).get("active") == "1"
    if user_id == me.id and not active:
        raise AdminError("you cannot deactivate yourself", "id")
    await user_store.set_active(request.app[ADMIN].pool, user_id, active)
    await audit(request, "user.activate" if active else "user.deactivate", f"user:{user_id}")
    raise web.HTTPFound("/users")


async def get_audit(request: web.Request) -> web.Response:
    await require(request, Permission.audit)
    before = request.query.get("before")
    action = request.query.get("action") or None
    rows = await audit_store.recent(
        request.app[ADMIN].pool, 200, int(before) if before and before.isdigit() else None, action
    )
    return render(request, "audit.html", rows=rows, action=action or "")


async def get_me(request: web.Request) -> web.Response:
    found = session_of(request)
    assert found is not None  # the middleware lets no anonymous request reach here
    user = found.user
    return web.json_response(
        {"id": user.id, "email": user.email, "role": user.role.value, "csrf": found.csrf}
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/login", get_login),
        web.post("/login", post_login),
        web.post("/logout", post_logout),
        web.get("/", home),
        web.get("/users", get_users),
        web.post("/users", post_user),
        web.post("/users/{id:\\d+}/active", post_user_active),
        web.get("/audit", get_audit),
        web.get("/api/me", get_me),
        web.get("/health", health),
    ]
