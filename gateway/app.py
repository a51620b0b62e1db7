"""The gateway assembled: connections, services and roles, opened and closed in one place.

Roles: ``api`` (HTTP intake and the accept writer), ``dispatch`` (provider binds, the
dispatcher, receipts and outcome writers), ``sweeper`` (scheduled, retried and lost
messages back into the queue), ``webhooks`` (status callbacks). One process may run
any set of them; all shared state is in PostgreSQL and Redis.

Shutdown order (``drain``): stop HTTP intake; stop reading the queue; let in-flight
submissions finish (bounded); flush the writers; unbind providers; cancel the rest;
close Redis and the database pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

import aiopg
import redis.asyncio as aioredis
from aiohttp import web

from gateway import metrics
from gateway.adapters import client_store, pg, pool_state, redis_client, text_cipher
from gateway.adapters.api_limiter import ApiLimiter
from gateway.adapters.batching import Batcher
from gateway.adapters.billing_store import ClientLimiter
from gateway.adapters.client_store import Client
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.key_cache import KeyCache
from gateway.adapters.redis_limiter import SharedBucket, SharedThrottle
from gateway.adapters.redis_queue import RedisQueue
from gateway.core.ids import IdGenerator
from gateway.core.message import NewMessage, Priority
from gateway.core.receipts import IdForms
from gateway.http import (
    inbound_handlers,
    ops_handlers,
    otp_handlers,
    routing_admin_handlers,
    routing_handlers,
)
from gateway.http.access import limits_middleware
from gateway.http.body import body_middleware
from gateway.http.errors import errors_middleware
from gateway.http.handlers import routes
from gateway.http.keys import GATEWAY
from gateway.services.dispatch import Dispatcher
from gateway.services.events import EventPublisher
from gateway.services.inbound import InboundService, inbound_stream
from gateway.services.outcomes import OutcomeWriter
from gateway.services.receipts import ReceiptService
from gateway.services.reload import SettingsWatcher
from gateway.services.retention import Retention
from gateway.services.router import CLASS_OF, Router, provider_states, request_for
from gateway.services.routing_admin import RoutingAdmin, without_disabled
from gateway.services.submit import SubmitService
from gateway.services.sweeper import Sweeper
from gateway.services.webhooks import WebhookService
from gateway.settings import ProviderConfig, Settings
from providers.backoff import backoff_delay
from providers.base import (
    InboundSink,
    Provider,
    ProviderError,
    ProviderSnapshot,
    ReceiptSink,
)
from providers.http.provider import HttpProvider
from providers.smpp.provider import SmppProvider
from routing import Decision, RouteTable, choose, quote

log = logging.getLogger("gateway.app")

ALL_ROLES = frozenset({"api", "dispatch", "sweeper", "webhooks"})


def build_provider(
    config: ProviderConfig, on_receipt: ReceiptSink, on_inbound: InboundSink | None = None
) -> Provider:
    if config.http is not None:
        return HttpProvider(config.http, on_receipt, on_inbound)
    assert config.smpp is not None
    return SmppProvider(config.smpp, on_receipt, on_inbound)


class Gateway:
    def __init__(
        self, settings: Settings, pool: aiopg.Pool, redis: aioredis.Redis, roles: frozenset[str]
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.roles = roles
        queue = settings.queue
        self.queue = RedisQueue(redis, queue.prefix, queue.group, queue.shards)
        self.events = EventPublisher(self.queue, settings.queue.events_maxlen)
        self.id_forms = {
            p.name: IdForms(p.submit_id_base, p.receipt_id_base) for p in settings.providers
        }
        self.receipts = ReceiptService(pool, self.events, self.id_forms, settings.store.batch_rows)
        self.ids: IdGenerator | None = None  # its node number comes from the database
        self.inbound = InboundService(
            settings.inbound,
            pool,
            redis,
            self._next_id,
            settings.default_region,
            inbound_stream(settings.queue.prefix),
        )
        self.providers: dict[str, Provider] = (
            {
                p.name: build_provider(p, self.receipts.sink, self.inbound.sink)
                for p in settings.providers
            }
            if "dispatch" in roles
            else {}
        )
        # HTTP providers post receipts to the API: any process with it parses them.
        self.callbacks: dict[str, HttpProvider] = {
            p.name: _http(self.providers.get(p.name))
            or HttpProvider(p.http, self.receipts.sink, self.inbound.sink)
            for p in settings.providers
            if p.http is not None
        }
        self.submit: SubmitService
        self.dispatcher: Dispatcher | None = None
        self.router: Router | None = None
        self.sweeper = Sweeper(settings.dispatch, pool, self.queue, self.events)
        self.retention = Retention(settings.retention, pool)
        self.webhooks = WebhookService(settings.webhooks, pool)
        if "webhooks" in roles:  # the callbacks of this process's receipts go out from here
            self.receipts.hooks = self.webhooks.handoff
        # Routes, prices and disabled providers set by operators, shared by all processes.
        self.routing_admin = RoutingAdmin(
            pool, [p.name for p in settings.providers], settings.routing, self._apply_routing
        )
        self._keys = KeyCache(self._key_lookup)  # revocation holds within a second
        self.api_limiter = ApiLimiter(redis, settings.queue.prefix, settings.api_limits)
        self._tasks: list[asyncio.Task[Any]] = []
        self.process_name = f"{socket.gethostname()}:{os.getpid()}"
        self.crashed = asyncio.Event()  # a background task died: the process should exit

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, database_url: str, redis_url: str, roles: Iterable[str] = ALL_ROLES
    ) -> AsyncIterator[Gateway]:
        text_cipher.install(text_cipher.from_settings(settings.store))  # plain unless keyed
        async with AsyncExitStack() as stack:
            pool = await stack.enter_async_context(
                pg.open_pool(database_url, settings.store.pool_size)
            )
            if settings.store.migrate_on_start:
                await pg.migrate(pool)
            # A partitioned Redis must fail a call, not hang it for good (the longest healthy
            # call is the dispatcher's 1 s XREADGROUP BLOCK).
            redis = redis_client.connect(redis_url, socket_timeout=10.0, socket_connect_timeout=5.0)
            stack.push_async_callback(redis.aclose)
            gateway = cls(settings, pool, redis, frozenset(roles))
            await gateway._prepare()
            try:
                yield gateway
            finally:
                await gateway.stop()

    async def _prepare(self) -> None:
        node = (await pg.fetch(self.pool, "SELECT nextval('id_nodes')"))[0][0]
        self.ids = IdGenerator(int(node))
        self.submit = SubmitService(
            self.pool,
            self.queue,
            self.ids,
            self.settings.store,
            self.settings.dispatch,
            quoter=self._hold,
            limiter=ClientLimiter(self.redis, self.settings.queue.prefix),
        )
        await self.queue.ensure_groups()
        await self.routing_admin.refresh()  # before the first message is priced or routed

    async def start(self) -> None:
        """Start the background work of this process's roles (binds first)."""
        spawn = self._spawn
        spawn(self._flush_metrics(), "metrics")
        if "api" in self.roles:
            spawn(self.submit.run(), "accept-writers")
        if self.roles & {"api", "dispatch"}:  # HTTP providers post to the API
            spawn(self.receipts.writer.run(), "receipts-writer")
            spawn(self.inbound.run(), "inbound")
        if self.settings.config_path is not None:
            watcher = SettingsWatcher(self.settings.config_path, os.environ, self.apply_settings)
            spawn(watcher.run(), "settings-watcher")
        spawn(self.routing_admin.run(), "routing-admin")
        if "dispatch" in self.roles:
            await self._start_dispatch()
        if "sweeper" in self.roles:
            spawn(self.sweeper.run(), "sweeper")
            spawn(self.retention.run(), "retention")  # partitions ahead, then retention
        if "webhooks" in self.roles:
            spawn(self.webhooks.run(), "webhooks")

    async def _start_dispatch(self) -> None:
        await asyncio.gather(*(self._first_bind(p) for p in self.providers.values()))
        outcomes = OutcomeWriter(
            self.pool,
            self.queue,
            self.events,
            self.id_forms,
            self.settings.store.batch_rows,
            self.webhooks.handoff if "webhooks" in self.roles else None,
        )
        throttles = self._throttles()
        self.router = Router(self.settings.routing, self.providers, throttles)
        self.router.disabled = self.routing_admin.disabled
        self.receipts.observers.append(self.router.observe_receipt)
        self.dispatcher = Dispatcher(
            self.settings.dispatch,
            self.pool,
            self.queue,
            self.providers,
            self.router,
            outcomes,
            self.id_forms,
            self.process_name,
            throttles,
        )
        self._outcomes = outcomes
        self._spawn(outcomes.run(), "outcomes-writers")
        self._spawn(self.dispatcher.run(), "dispatcher")
        self._spawn(self._publish_pool_state(), "pool-state")

    async def _publish_pool_state(self) -> None:
        """Once a second: this process's provider snapshots into Redis (pool_state)."""
        prefix, last = self.settings.queue.prefix, dict[str, int]()
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            snapshots = [p.snapshot() for p in self.providers.values()]
            gates = self.router.gates() if self.router else {}
            extra = {s.name: _extra(s, last, gates) for s in snapshots}
            last = {s.name: s.submitted for s in snapshots}
            state = pool_state.encode(snapshots, extra)
            try:
                await pool_state.publish(self.redis, prefix, self.process_name, state)
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("could not publish pool state: %r", exc)
            await asyncio.sleep(1.0)  # a ticker: the state is sampled, not awaited

    async def _flush_metrics(self) -> None:
        """Once a second: this process's counts into the shared totals (metrics.recorder)."""
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            await asyncio.sleep(1.0)  # a ticker: counts are sampled, not awaited
            await self._flush_metrics_once()

    async def _flush_metrics_once(self) -> None:
        try:
            await metrics.flush(self.redis, self.settings.queue.prefix)
        except TRANSIENT as exc:  # kept for the next flush
            raise_if_cancelling()
            log.warning("could not publish metrics: %r", exc)

    async def _last_metrics_flush(self) -> None:
        """The last second's counts, drain included; a partitioned Redis must not hold
        the stop (what is not written is lost, as in a crash)."""
        try:
            async with asyncio.timeout(2.0):
                await self._flush_metrics_once()
        except TimeoutError:
            log.warning("metrics of the last second not published: Redis did not answer")

    async def simulate(self, message: NewMessage) -> Decision:
        """The decision a dispatcher would make now, from the pool state in Redis."""
        live = await pool_state.read(self.redis, self.settings.queue.prefix)
        states = without_disabled(provider_states(live), self.routing_admin.disabled)
        return choose(request_for(message), self.settings.routing, states)

    def _hold(self, destination: str, parts: int, priority: Priority) -> Decimal | None:
        """A billed message's hold at accept: its dearest eligible route (the live table,
        so a reload applies); what the route taken costs less is given back at submission."""
        found = quote(self.settings.routing, destination, parts, CLASS_OF[priority])
        return None if found is None else found.highest

    def _next_id(self) -> int:
        assert self.ids is not None, "ids are made once the gateway is open"
        return self.ids.next()

    def apply_settings(self, settings: Settings) -> None:
        """A reload: the route table changes at once; the rest needs a restart (so a
        table naming providers this process does not run is refused)."""
        running = {p.name for p in self.settings.providers}
        if set(settings.routing.providers) - running:
            raise ValueError("the new routes name providers that need a restart to start")
        self.routing_admin.file_reloaded(settings.routing)  # an operators' override stays on top

    def _apply_routing(self, table: RouteTable, disabled: frozenset[str]) -> None:
        """The effective routing (a file reload, or the operators' shared override)."""
        self.settings = dataclasses.replace(self.settings, routing=table)
        if self.router is not None:
            self.router.replace_table(table)
            self.router.disabled = disabled

    def _throttles(self) -> dict[str, SharedThrottle]:
        """One shared TPS limit per provider that has one (a key in Redis, all processes)."""
        prefix = self.settings.queue.prefix
        return {
            p.name: SharedThrottle(
                SharedBucket(self.redis, f"{prefix}:{{tps}}:{p.name}", p.tps, p.tps_burst)
            )
            for p in self.settings.providers
            if p.tps
        }

    async def _first_bind(self, provider: Provider) -> None:
        """Wait briefly for a provider's first bind; a provider that is down must not keep
        the gateway from starting: its messages wait, and it is bound in the background."""
        try:
            await asyncio.wait_for(provider.start(), self.settings.dispatch.first_bind_wait_s)
        except (ProviderError, TimeoutError) as exc:
            log.warning(
                "provider %s not bound yet (%s); retrying in the background", provider.name, exc
            )
            self._spawn(self._keep_binding(provider), f"bind {provider.name}")

    async def _keep_binding(self, provider: Provider) -> None:
        for attempt in itertools.count():
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            await asyncio.sleep(backoff_delay(attempt, 1.0, 30.0))
            try:
                await provider.start()
            except ProviderError as exc:
                log.warning("provider %s: bind failed (%s)", provider.name, exc)
            else:
                log.info("provider %s bound", provider.name)
                return

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._report_crash)
        self._tasks.append(task)

    def _report_crash(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("task %s crashed: %r", task.get_name(), task.exception())
            self.crashed.set()

    async def stop(self, deadline_s: float = 10.0) -> None:
        """Drain and stop (see the module docstring for the order)."""
        if self.dispatcher is not None:
            await self.dispatcher.drain(deadline_s)
        await self._flush_writers(deadline_s)
        await asyncio.gather(*(p.close() for p in self.providers.values()), return_exceptions=True)
        await self._last_metrics_flush()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _flush_writers(self, deadline_s: float) -> None:
        writers: list[Batcher[Any, Any]] = [
            *self.submit.writers,
            self.receipts.writer,
            self.inbound.writer,
        ]
        if self.dispatcher is not None:
            writers += self._outcomes.writers
        await asyncio.gather(*(w.drained(deadline_s) for w in writers))

    async def authenticate(self, api_key: str) -> Client | None:
        """Key → client (with the key's scopes), cached for a second (``KeyCache``)."""
        return await self._keys.get(api_key)

    async def _key_lookup(self, api_key: str) -> Client | None:
        return await client_store.by_key(self.pool, api_key)

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "database": await _ok(pg.fetch(self.pool, "SELECT 1")),
            "queue": await _ok(self.redis.ping()),
        }
        for name, provider in self.providers.items():
            checks[f"provider:{name}"] = provider.ready
        return checks

    def http_app(self) -> web.Application:
        app = web.Application(
            middlewares=[
                errors_middleware,
                limits_middleware(self.api_limiter),
                body_middleware(self.settings.http),
            ],
            client_max_size=self.settings.http.max_body_bytes,
        )
        app[GATEWAY] = self
        app.add_routes(routes())
        app.add_routes(ops_handlers.routes())
        app.add_routes(routing_handlers.routes())
        app.add_routes(routing_admin_handlers.routes())
        app.add_routes(inbound_handlers.routes())
        otp_handlers.setup(app)
        return app


def _extra(
    snapshot: ProviderSnapshot, last: Mapping[str, int], gates: Mapping[str, str]
) -> dict[str, Any]:
    used = snapshot.submitted - last.get(snapshot.name, snapshot.submitted)
    return {"tps_used": used, "gate": gates.get(snapshot.name, "closed")}


def _http(provider: Provider | None) -> HttpProvider | None:
    return provider if isinstance(provider, HttpProvider) else None


async def _ok(awaitable: Any) -> bool:
    try:
        await asyncio.wait_for(awaitable, 2.0)
    except Exception:
        return False
    return True
