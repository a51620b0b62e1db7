"""Running the admin role: its app on its own port, and its key to the gateway's API.

Without ``[admin] gateway_api_key`` the admin sends campaigns as the gateway client
``campaigns`` (made on first start) with a key made for this process and revoked when it
stops; a process killed with -9 leaves its key behind (``smsgw key-list campaigns``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from admin.app import Admin
from admin.settings import AdminSettings, admin_settings
from gateway.adapters import client_store, pg
from gateway.core.access import Scope
from gateway.embedded import ServerUrls
from gateway.http.access_log import ACCESS_LOG, MaskedAccessLogger
from gateway.settings import Secret, Settings

log = logging.getLogger("gateway.run")
ADMIN_ROLE = "admin"
CAMPAIGN_CLIENT = "campaigns"


@asynccontextmanager
async def serving_admin(
    settings: Settings, urls: ServerUrls, reuse_port: bool = False
) -> AsyncIterator[Admin]:
    found = admin_settings(settings, os.environ)
    async with _gateway_key(found, urls) as keyed, Admin.open(
        keyed, settings, urls.database_url, urls.redis_url
    ) as admin:
        runner = web.AppRunner(
            admin.http_app(),
            access_log=ACCESS_LOG if settings.http.access_log else None,
            access_log_class=MaskedAccessLogger,
            shutdown_timeout=5.0,
        )
        await runner.setup()
        try:
            await admin.start()
            site = web.TCPSite(runner, found.host, found.port, reuse_port=reuse_port or None)
            await site.start()
            log.info("admin UI on %s", site.name)
            yield admin
        finally:
            await runner.cleanup()


@asynccontextmanager
async def _gateway_key(found: AdminSettings, urls: ServerUrls) -> AsyncIterator[AdminSettings]:
    if found.gateway_api_key is not None:
        yield found
        return
    async with pg.open_pool(urls.database_url, 1) as pool:
        await pg.migrate(pool)
        client = await client_store.by_name(pool, CAMPAIGN_CLIENT)
        if client is None:
            client = (await client_store.create(pool, CAMPAIGN_CLIENT)).client
        # admin + operator: the providers page reads the pool and changes the routing.
        scopes = {Scope.SEND, Scope.READ, Scope.ADMIN, Scope.OPERATOR}
        key = await client_store.add_key(pool, client.id, scopes)
        try:
            yield dataclasses.replace(found, gateway_api_key=Secret(key))
        finally:
            await client_store.revoke(pool, key[:10])
