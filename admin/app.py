"""The admin assembled: its database pool, Redis, the gateway client, pages and tasks.

A consumer of the gateway: campaigns go in through ``gateway.client`` (the HTTP API) and
statuses come back on the events stream; the admin keeps its own tables (schema ``admin``).
Shutdown order: stop HTTP intake (the runner's site), cancel the background tasks (each
leaves its work resumable), close the gateway client, Redis and the pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiopg
import redis.asyncio as aioredis
from aiohttp import web

from admin.adapters import db
from admin.http import (
    analytics,
    audiences,
    auth_pages,
    campaigns,
    contacts,
    exports,
    links,
    providers,
    templates_pages,
)
from admin.http.auth import session_middleware
from admin.http.errors import errors_middleware
from admin.http.keys import ADMIN
from admin.services import campaign_metrics, campaign_runner, events_consumer
from admin.settings import AdminSettings
from gateway.adapters import failures, pg, redis_client
from gateway.client import GatewayClient
from gateway.settings import Settings

log = logging.getLogger("admin.app")
STATIC = Path(__file__).parent / "static"
FEATURES = (
    auth_pages,
    contacts,
    audiences,
    templates_pages,
    links,
    campaigns,
    analytics,
    exports,
    providers,
)


class Admin:
    def __init__(
        self,
        settings: AdminSettings,
        gateway_settings: Settings,
        pool: aiopg.Pool,
        redis: aioredis.Redis,
    ) -> None:
        self.settings = settings
        self.gateway_settings = gateway_settings  # the route table (prices), stream names
        self.pool = pool
        self.redis = redis
        self.gateway: Any = None  # gateway.client.GatewayClient, opened in open()
        self._tasks: list[asyncio.Task[Any]] = []
        self.crashed = asyncio.Event()

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: AdminSettings, gateway_settings: Settings, database_url: str, redis_url: str
    ) -> AsyncIterator[Admin]:
        async with AsyncExitStack() as stack:
            pool = await stack.enter_async_context(pg.open_pool(database_url, 4, "smsgw-admin"))
            await pg.migrate(pool)  # the BI views read the gateway's tables too
            await db.migrate(pool)
            redis = redis_client.connect(redis_url, socket_timeout=10.0, socket_connect_timeout=5.0)
            stack.push_async_callback(redis.aclose)
            admin = cls(settings, gateway_settings, pool, redis)
            await admin._open_gateway_client(stack)
            try:
                yield admin
            finally:
                await admin.stop()

    async def _open_gateway_client(self, stack: AsyncExitStack) -> None:
        """The campaigns' way into the gateway; none without an API key (the runner idles)."""
        key, url = self.settings.gateway_api_key, self.settings.gateway_url
        if key is not None and url:
            self.gateway = await stack.enter_async_context(GatewayClient.open(url, key.reveal()))

    async def start(self) -> None:
        for name, work in (
            ("campaign-runner", campaign_runner.run),
            ("events-consumer", events_consumer.run),
            ("campaign-metrics", campaign_metrics.run),
        ):
            self._spawn(work, name)

    def _spawn(self, work: Callable[[Admin], Coroutine[Any, Any, None]], name: str) -> None:
        task = asyncio.create_task(work(self), name=f"admin-{name}")
        task.add_done_callback(self._report_crash)
        self._tasks.append(task)

    def _report_crash(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s died", task.get_name(), exc_info=task.exception())
            self.crashed.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                failures.raise_if_cancelling()
            except Exception:  # already reported by _report_crash
                pass
        self._tasks.clear()

    def http_app(self) -> web.Application:
        app = web.Application(
            middlewares=[errors_middleware, session_middleware], client_max_size=64 * 2**20
        )
        app[ADMIN] = self
        for feature in FEATURES:
            app.add_routes(feature.routes())
        app.router.add_static("/static/", STATIC)
        return app
