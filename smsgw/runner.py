"""Running the gateway: servers (embedded or given), the Gateway, HTTP, signals, drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import ALL_ROLES, Gateway
from gateway.embedded import ServerUrls, servers
from gateway.http.access_log import ACCESS_LOG, MaskedAccessLogger
from gateway.settings import HttpSettings, Settings, with_env
from smsgw.admin_serving import ADMIN_ROLE, serving_admin

log = logging.getLogger("gateway.run")


@contextlib.contextmanager
def server_urls(settings: Settings, stop_adopted: bool = True) -> Iterator[ServerUrls]:
    """The configured servers, or embedded ones started under the data dir."""
    with servers(
        settings.data_dir, settings.database_url, settings.redis_url, stop_adopted
    ) as urls:
        yield urls


def with_scratch_servers(run: Callable[[ServerUrls], Coroutine[Any, Any, None]]) -> None:
    """Run ``run`` against the environment's servers, or embedded ones in a scratch
    directory (the benchmarks: nothing of a real data dir is touched)."""
    data_dir = Path(tempfile.mkdtemp(prefix="sgd", dir="/tmp"))
    with server_urls(with_env(Settings(data_dir=data_dir), os.environ)) as urls:
        asyncio.run(run(urls))


@asynccontextmanager
async def serving(
    settings: Settings, urls: ServerUrls, roles: Iterable[str] = ALL_ROLES, reuse_port: bool = False
) -> AsyncIterator[Gateway]:
    """The gateway with its roles started and (for ``api``) its HTTP site listening."""
    async with Gateway.open(settings, urls.database_url, urls.redis_url, roles) as gateway:
        runner = web.AppRunner(
            gateway.http_app(),
            access_log=ACCESS_LOG if settings.http.access_log else None,
            access_log_class=MaskedAccessLogger,
            shutdown_timeout=5.0,
            keepalive_timeout=settings.http.idle_timeout_s,  # also bounds a slow request head
            lingering_time=settings.http.linger_s,  # after a refused body: gateway.http.body
        )
        await runner.setup()
        try:
            await gateway.start()
            if "api" in gateway.roles:
                site = web.TCPSite(
                    runner,
                    settings.http.host,
                    settings.http.port,
                    backlog=1024,
                    reuse_port=reuse_port or None,
                    ssl_context=server_tls(settings.http),
                )
                await site.start()
                log.info("HTTP API on %s", site.name)
            yield gateway
        finally:
            await runner.cleanup()  # stop intake first


def server_tls(http: HttpSettings) -> ssl.SSLContext | None:
    """HTTPS when ``[http] tls_cert`` / ``tls_key`` are set (TLS 1.2 at least)."""
    if http.tls_cert is None or http.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(http.tls_cert, http.tls_key)
    return context


async def run_until_signalled(
    settings: Settings, urls: ServerUrls, roles: Iterable[str], reuse_port: bool = False
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        gateway = await stack.enter_async_context(
            serving(settings, urls, set(roles) - {ADMIN_ROLE}, reuse_port)
        )
        crashes = [gateway.crashed]
        if ADMIN_ROLE in roles:  # after the gateway: its API is up when campaigns resume
            admin = await stack.enter_async_context(serving_admin(settings, urls, reuse_port))
            crashes.append(admin.crashed)
        log.info("smsgw running (roles: %s); SIGTERM drains and stops", ",".join(sorted(roles)))
        waits = [asyncio.ensure_future(e.wait()) for e in (*crashes, stop)]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        code = 1 if any(e.is_set() for e in crashes) else 0
    log.info("smsgw stopped")
    return code
