"""The admin against real servers: PostgreSQL with both sets of migrations, Redis, and the
admin app on a loopback port with a logged-in session per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiopg
import pytest
import redis.asyncio as aioredis

from admin.adapters import db, user_store
from admin.app import Admin
from admin.core import passwords
from admin.core.roles import Role
from admin.settings import AdminSettings
from gateway.adapters import client_store, pg
from gateway.app import Gateway
from gateway.core.access import Scope
from gateway.embedded import ServerUrls
from gateway.settings import Secret, Settings
from loadtest.smsc import SmscConfig, SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import gateway_settings
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


def admin_test_settings(**overrides: Any) -> AdminSettings:
    return AdminSettings(cookie_secure="off", **overrides)


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


@dataclass
class Stack:
    """The gateway (API, dispatch, sweeper, webhooks) over the SMSC simulator, and the admin
    sending through the gateway's API with its background tasks running."""

    app: AdminApp
    gateway: Gateway
    smsc: SmscSimulator
    api_key: str

    @property
    def admin(self) -> Admin:
        return self.app.admin


@pytest.fixture
async def full_stack(
    clean: None, admin_clean: None, admin_db: aiopg.Pool, server_urls: ServerUrls
) -> AsyncIterator[Stack]:
    config = SmscConfig(port=0, system_id="smsgw", password="secret", receipt_delay=0.05)
    async with SmscSimulator(config) as smsc:
        gw_settings = gateway_settings(smsc.port)
        async with serving(gw_settings, server_urls) as gateway:
            created = await client_store.create(admin_db, "campaigns", default_sender="Shop")
            # The scopes smsgw/admin_serving.py gives the admin: operator for the providers page.
            scopes = {Scope.SEND, Scope.READ, Scope.ADMIN, Scope.OPERATOR}
            key = await client_store.add_key(admin_db, created.client.id, scopes)
            settings = admin_test_settings(
                gateway_url=f"http://127.0.0.1:{gw_settings.http.port}",
                gateway_api_key=Secret(key),
            )
            async with Admin.open(
                settings, gw_settings, server_urls.database_url, server_urls.redis_url
            ) as admin, listening(admin.http_app()) as port:
                await admin.start()
                app = AdminApp(admin, f"http://127.0.0.1:{port}")
                try:
                    yield Stack(app, gateway, smsc, key)
                finally:
                    for http in app.sessions:
                        await http.close()
