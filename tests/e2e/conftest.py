"""An in-process gateway on real TCP: HTTP in, SMPP to the simulator, receipts back."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import aiopg
import pytest
from aiohttp import web

from gateway.adapters import client_store, pg
from gateway.adapters.client_store import NewClient
from gateway.app import Gateway
from gateway.embedded import ServerUrls, free_port
from gateway.settings import (
    DispatchSettings,
    HttpSettings,
    ProviderConfig,
    Settings,
    WebhookSettings,
    from_mapping,
    route_table,
)
from loadtest.smsc import SmscConfig, SmscSimulator
from providers.smpp.settings import SmppSettings
from smsgw.runner import serving
from tests.logscan import register_text
from tests.loopback import listening


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    sim = SmscSimulator(
        SmscConfig(port=0, system_id="smsgw", password="secret", receipt_delay=0.05)
    )
    await sim.start()
    yield sim
    await sim.stop()


def gateway_settings(smsc_port: int, **dispatch: Any) -> Settings:
    smpp = SmppSettings(
        name="sim",
        host="127.0.0.1",
        port=smsc_port,
        system_id="smsgw",
        password="secret",
        window=50,
        enquire_link_interval=5.0,
        response_timeout=2.0,
        reconnect_min=0.1,
        reconnect_max=0.5,
    )
    provider = ProviderConfig("sim", "smpp", smpp=smpp, price_per_part=Decimal("0.35"))
    return Settings(
        data_dir=Path("/tmp/unused"),
        log_level="WARNING",
        http=HttpSettings(port=free_port()),
        dispatch=dataclasses.replace(DispatchSettings(sweep_interval_s=0.2), **dispatch),
        webhooks=WebhookSettings(
            retry_base_s=0.2, poll_interval_s=0.1, allow_networks=("127.0.0.0/8",)
        ),
        providers=(provider,),
        routing=route_table({}, (provider,)),
    )


@dataclass
class Api:
    gateway: Gateway
    http: aiohttp.ClientSession
    client: NewClient
    pool: aiopg.Pool

    async def send(self, **message: Any) -> tuple[int, dict[str, Any]]:
        register_text(str(message.get("text", "")))
        async with self.http.post("/v1/messages", json=message) as response:
            return response.status, await response.json()

    async def get(self, message_id: str) -> dict[str, Any]:
        async with self.http.get(f"/v1/messages/{message_id}") as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def wait_status(
        self, message_id: str, *statuses: str, within: float = 15.0
    ) -> dict[str, Any]:
        found: dict[str, Any] = await wait_for(
            lambda: self._status_in(message_id, statuses), within
        )
        return found

    async def _status_in(self, message_id: str, statuses: tuple[str, ...]) -> dict[str, Any] | None:
        found = await self.get(message_id)
        return found if found["status"] in statuses else None


async def wait_for(probe: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    """Poll ``probe`` until it returns something truthy, with a deadline."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def api(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator
) -> AsyncIterator[Api]:
    async with serving_api(gateway_settings(smsc.port), server_urls, pool) as api:
        yield api


@asynccontextmanager
async def serving_api(
    settings: Settings, server_urls: ServerUrls, pool: aiopg.Pool, client: str = "test-client"
) -> AsyncIterator[Api]:
    """A gateway serving ``settings``, and an HTTP session with a new client's key."""
    async with serving(settings, server_urls) as gateway:
        created = await client_store.create(pool, client, default_sender="Shop")
        headers = {"Authorization": f"Bearer {created.api_key}"}
        base = f"http://127.0.0.1:{settings.http.port}"
        async with aiohttp.ClientSession(base, headers=headers) as http:
            yield Api(gateway, http, created, pool)


@dataclass
class Receiver:
    """A webhook receiver on real TCP that answers with the queued statuses."""

    port: int = 0
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        return web.Response(status=self.answers.pop(0) if self.answers else 204)

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.calls]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    async with listening(app) as recv.port:
        yield recv


async def count(pool: aiopg.Pool, sql: str, *params: Any) -> int:
    return int((await pg.fetch(pool, sql, params))[0][0])


def smpp_provider(name: str, port: int, **extra: Any) -> dict[str, Any]:
    """A ``[[providers]]`` table for a simulator, with short timeouts for tests."""
    return {
        "name": name,
        "host": "127.0.0.1",
        "port": port,
        "system_id": "smsgw",
        "password": "secret",
        "window": 20,
        "response_timeout": 1.0,
        "reconnect_min": 0.1,
        "reconnect_max": 0.5,
        **extra,
    }


def routed_settings(data: dict[str, Any]) -> Settings:
    """The test gateway's settings with the providers and routes of a TOML-like dict."""
    parsed = from_mapping(data)
    base = gateway_settings(0)
    return dataclasses.replace(base, providers=parsed.providers, routing=parsed.routing)


def cheap_and_dear(cheap_port: int, dear_port: int) -> Settings:
    """Two simulators serving +7: "cheap" at 0.20 a part first, "dear" at 0.30."""
    return routed_settings(
        {
            "providers": [smpp_provider("cheap", cheap_port), smpp_provider("dear", dear_port)],
            "routes": [
                {"provider": "cheap", "prefixes": ["+7"], "price_per_part": "0.20"},
                {"provider": "dear", "prefixes": ["+7"], "price_per_part": "0.30"},
            ],
        }
    )


@pytest.fixture
async def two_smscs() -> AsyncIterator[tuple[SmscSimulator, SmscSimulator]]:
    config = SmscConfig(port=0, system_id="smsgw", password="secret", receipt_delay=0.05)
    async with SmscSimulator(config) as first, SmscSimulator(config) as second:
        yield first, second


async def providers_ready(gateway: Gateway) -> bool:
    return all(p.ready for p in gateway.providers.values())


async def count_at_least(pool: aiopg.Pool, sql: str, n: int) -> bool:
    return await count(pool, sql) >= n
