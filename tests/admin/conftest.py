"""The admin against real servers: PostgreSQL with both sets of migrations, Redis, and the
admin app on a loopback port with a logged-in session per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import aiopg
import pytest
import redis.asyncio as aioredis

from admin.adapters import db, user_store
from admin.app import Admin
from admin.core import passwords
from admin.core.roles import Role
from admin.settings import AdminSettings
from gateway.adapters import pg
from gateway.embedded import ServerUrls
from gateway.settings import Settings
from tests.loopback import listening

PASSWORD = "correct horse 42"


@pytest.fixture(scope="session")
async def admin_db(pool: aiopg.Pool) -> aiopg.Pool:
    """The session's pool, with the admin's migrations applied on top of the gateway's."""
    await db.migrate(pool)
    return pool


@pytest.fixture
async def admin_clean(admin_db: aiopg.Pool, redis: aioredis.Redis) -> None:
    """Every table of schema admin emptied, and the Redis db (before a test, not after)."""
    rows = await pg.fetch(
        admin_db,
        "SELECT string_agg(format('%%I.%%I', schemaname, tablename), ', ') FROM pg_tables "
        "WHERE schemaname = 'admin' AND tablename <> 'schema_migrations'",
    )
    await pg.execute(admin_db, f"TRUNCATE {rows[0][0]} RESTART IDENTITY CASCADE")
    await redis.flushdb()


@dataclass
class AdminApp:
    admin: Admin
    url: str
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    async def client(self, role: Role, email: str | None = None) -> aiohttp.ClientSession:
        """A session logged in as a new user of ``role``; ``.csrf`` holds its CSRF token."""
        email = email or f"{role.value}-{len(self.sessions)}@example.com"
        hashed = passwords.hash_password(PASSWORD)
        await user_store.create_user(self.admin.pool, email, role.value.title(), role, hashed)
        http = await self.anonymous()
        async with http.post("/login", data={"email": email, "password": PASSWORD}) as reply:
            assert reply.status == 200, await reply.text()  # after the redirect home
        async with http.get("/api/me") as reply:
            http.csrf = (await reply.json())["csrf"]  # type: ignore[attr-defined]
        return http

    async def anonymous(self) -> aiohttp.ClientSession:
        http = aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        return http


def admin_test_settings(**overrides: object) -> AdminSettings:
    return AdminSettings(cookie_secure="off", **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def admin_app(
    admin_clean: None, server_urls: ServerUrls
) -> AsyncIterator[AdminApp]:
    """The admin's pages and APIs on a free port; background tasks not started (a test that
    needs the runner or the consumer calls ``admin_app.admin.start()``)."""
    settings = admin_test_settings()
    async with Admin.open(
        settings, Settings(), server_urls.database_url, server_urls.redis_url
    ) as admin, listening(admin.http_app()) as port:
        found = AdminApp(admin, f"http://127.0.0.1:{port}")
        try:
            yield found
        finally:
            for http in found.sessions:
                await http.close()
