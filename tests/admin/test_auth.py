"""Log-in, sessions, CSRF, roles and the audit log, over real HTTP against real PostgreSQL."""

from __future__ import annotations

import pytest

from admin.adapters import audit_store
from admin.core import passwords
from admin.core.roles import GRANTS, Permission, Role, can
from tests.admin.conftest import PASSWORD, AdminApp


def test_every_role_has_a_grant_and_admin_has_all() -> None:
    assert set(GRANTS) == set(Role)
    assert all(can(Role.admin, p) for p in Permission)
    assert not can(Role.marketer, Permission.analytics)
    assert not can(Role.marketer, Permission.export)
    assert can(Role.analyst, Permission.analytics)


def test_passwords_hash_verify_and_rules() -> None:
    stored = passwords.hash_password("s3cret-passw0rd")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "s3cret-passw0rd")
    assert not passwords.verify(stored, "wrong")
    assert not passwords.verify("not a hash", "x")
    assert passwords.weakness("short1") is not None
    assert passwords.weakness("onlyletterslong") is not None
    assert passwords.weakness("letters and 1 digit") is None


async def test_pages_need_a_session(admin_app: AdminApp) -> None:
    http = await admin_app.anonymous()
    async with http.get("/campaigns", allow_redirects=False) as reply:
        assert reply.status == 302
        assert reply.headers["Location"] == "/login?next=/campaigns"
    async with http.get("/api/me") as reply:
        assert reply.status == 401
        assert (await reply.json())["error"]["code"] == "unauthenticated"


async def test_log_in_wrong_password_and_lockout(admin_app: AdminApp) -> None:
    await admin_app.client(Role.marketer, "m@example.com")
    http = await admin_app.anonymous()
    for _ in range(5):
        async with http.post("/login", data={"email": "m@example.com", "password": "x"}) as r:
            assert r.status == 401
    form = {"email": "m@example.com", "password": PASSWORD}
    async with http.post("/login", data=form) as reply:
        assert reply.status == 429  # locked for 15 minutes, even with the right password


async def test_session_cookie_is_httponly_and_strict(admin_app: AdminApp) -> None:
    await admin_app.client(Role.analyst, "a@example.com")
    http = await admin_app.anonymous()
    form = {"email": "a@example.com", "password": PASSWORD}
    async with http.post("/login", data=form, allow_redirects=False) as reply:
        cookie = reply.cookies["smsgw_admin"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"


async def test_role_refused_with_403(admin_app: AdminApp) -> None:
    marketer = await admin_app.client(Role.marketer)
    async with marketer.get("/users") as reply:
        assert reply.status == 403
        assert 'data-code="forbidden"' in await reply.text()
    async with marketer.get("/audit", headers={"Accept": "application/json"}) as reply:
        assert reply.status == 403
        assert (await reply.json())["error"]["code"] == "forbidden"


async def test_unsafe_request_needs_the_csrf_token(admin_app: AdminApp) -> None:
    boss = await admin_app.client(Role.admin)
    form = {"email": "new@example.com", "role": "analyst", "password": "a long pass 1"}
    async with boss.post("/users", data=form) as reply:
        assert reply.status == 403
        assert 'data-code="csrf"' in await reply.text()
    async with boss.post("/users", data={**form, "_csrf": boss.csrf}) as reply:  # type: ignore[attr-defined]
        assert reply.status == 200
    rows = await audit_store.recent(admin_app.admin.pool)
    assert rows[0]["action"] == "user.create"


async def test_cross_site_origin_refused(admin_app: AdminApp) -> None:
    http = await admin_app.anonymous()
    headers = {"Origin": "https://evil.example"}
    async with http.post("/login", data={"email": "x", "password": "y"}, headers=headers) as r:
        assert r.status == 403


async def test_log_out_ends_the_session(admin_app: AdminApp) -> None:
    http = await admin_app.client(Role.operator)
    async with http.post("/logout", data={"_csrf": http.csrf}) as reply:  # type: ignore[attr-defined]
        assert reply.url.path == "/login"
    async with http.get("/api/me") as reply:
        assert reply.status == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/"])
async def test_no_open_redirect_after_log_in(admin_app: AdminApp, target: str) -> None:
    await admin_app.client(Role.sre, "s@example.com")
    http = await admin_app.anonymous()
    form = {"email": "s@example.com", "password": PASSWORD, "next": target}
    async with http.post("/login", data=form, allow_redirects=False) as reply:
        assert reply.headers["Location"] == "/"
