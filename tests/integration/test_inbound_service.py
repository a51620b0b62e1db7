"""InboundService on real PostgreSQL, Redis and TCP: parts in, messages stored, published,
forwarded (signed, through the webhook outbox) and opt-outs applied; last, MO traffic from
the SMSC simulator over a real bind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiopg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from gateway.adapters import client_store, inbound_store, pg
from gateway.adapters.client_store import Client, NewClient
from gateway.core.ids import IdGenerator
from gateway.core.inbound import ForwardRule, InboundSettings
from gateway.core.signing import verify
from gateway.embedded import ServerUrls
from gateway.http.access_log import ACCESS_LOG, MaskedAccessLogger
from gateway.http.errors import errors_middleware
from gateway.http.inbound_handlers import routes
from gateway.http.keys import GATEWAY
from gateway.services.inbound import InboundService, inbound_stream
from gateway.services.webhooks import WebhookService
from gateway.settings import Settings, WebhookSettings
from loadtest.smsc import SmscConfig, SmscSimulator
from providers.base import InboundPart, Receipt
from providers.encoding import encode_parts
from providers.smpp.provider import SmppProvider
from providers.smpp.settings import SmppSettings
from tests.loopback import listening

WITHIN = 15.0
STREAM = inbound_stream("test")


@dataclass
class Receiver:
    """An HTTP endpoint on real TCP; each forward lands in ``calls``."""

    port: int = 0
    calls: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/inbound"

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        await self.calls.put((headers, await request.read()))
        return web.Response(status=204)

    async def next(self) -> tuple[dict[str, str], dict[str, Any]]:
        headers, body = await asyncio.wait_for(self.calls.get(), WITHIN)
        return headers, json.loads(body)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/inbound", recv.handle)
    async with listening(app) as recv.port:
        yield recv


@contextlib.asynccontextmanager
async def running(*coros: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Setup:
    service: InboundService
    shop: NewClient
    receiver: Receiver


def settings_for(url: str, **changes: Any) -> InboundSettings:
    rules = (
        ForwardRule("shop", url),
        ForwardRule("pizza", url + "?pizza", keyword="ПИЦЦА"),
    )
    return InboundSettings(forward=rules, **changes)


@pytest.fixture
async def work_pool(server_urls: ServerUrls) -> AsyncIterator[aiopg.Pool]:
    """The services' own pool: cancelling a task in the middle of a query can strand its
    connection (aiopg), which must not starve the session's pool of later tests."""
    async with pg.open_pool(server_urls.database_url, 4) as pool:
        yield pool


async def start(
    pool: aiopg.Pool, redis: aioredis.Redis, receiver: Receiver, **changes: Any
) -> Setup:
    shop = await client_store.create(pool, "shop")
    settings = settings_for(receiver.url, **changes)
    service = InboundService(settings, pool, redis, IdGenerator(1).next, "RU", STREAM)
    return Setup(service, shop, receiver)


def webhooks(pool: aiopg.Pool) -> WebhookService:
    loopback = ("127.0.0.0/8",)  # the receiver; callbacks to loopback are refused by default
    settings = WebhookSettings(poll_interval_s=0.05, retry_base_s=0.1, allow_networks=loopback)
    return WebhookService(settings, pool)


def udh_parts(text: str, ref: int, source: str = "79211234567") -> list[InboundPart]:
    return [
        InboundPart("mts", source, "1234", p.data_coding, p.esm_class, p.short_message)
        for p in encode_parts(text, ref, max_parts=20)
    ]


LONG = "Добрый день! Заказ №4521 пришёл повреждённым, коробка смята 😞. " * 3


async def test_parts_are_joined_stored_published_and_forwarded_signed(
    pool: aiopg.Pool, work_pool: aiopg.Pool, redis: aioredis.Redis, clean: None, receiver: Receiver
) -> None:
    s = await start(work_pool, redis, receiver)
    parts = udh_parts(LONG, 42)
    async with running(s.service.run(), webhooks(work_pool).run()):
        acks = [s.service.sink(p) for p in reversed(parts)] + [s.service.sink(parts[0])]
        await asyncio.wait_for(asyncio.gather(*acks), WITHIN)  # committed: the SMSC may be told
        _, body = await receiver.next()
    data = body["data"]
    assert (data["from"], data["to"], data["text"]) == ("+79211234567", "1234", LONG)
    assert (data["parts"], data["total"], data["complete"]) == (len(parts), len(parts), True)
    [(stored,)] = await pg.fetch(pool, "SELECT body FROM inbound_messages")
    assert stored == LONG
    reply: Any = await redis.xread({STREAM: "0"})
    [(_, entries)] = reply
    published = json.loads(entries[0][1][b"messages"])
    assert [m["data"]["text"] for m in published] == [LONG]
    assert s.service.stored == 1 and s.service.forwarded == 1


async def test_forwards_are_signed_with_the_rule_clients_secret(
    pool: aiopg.Pool, work_pool: aiopg.Pool, redis: aioredis.Redis, clean: None, receiver: Receiver
) -> None:
    s = await start(work_pool, redis, receiver)
    async with running(s.service.run(), webhooks(work_pool).run()):
        await s.service.sink(InboundPart("http1", "+79211234567", "+79001234567", text="Привет"))
        headers, raw = await asyncio.wait_for(receiver.calls.get(), WITHIN)
    assert verify(s.shop.webhook_secret, headers, raw, int(time.time()))
    assert json.loads(raw)["data"]["text"] == "Привет"


async def test_stop_puts_the_number_on_the_list_and_start_takes_it_off(
    pool: aiopg.Pool, work_pool: aiopg.Pool, redis: aioredis.Redis, clean: None, receiver: Receiver
) -> None:
    s = await start(work_pool, redis, receiver)
    number = "+79211234567"
    async with running(s.service.run()):
        await s.service.sink(InboundPart("mts", "89211234567", "1234", text=" Стоп! "))
        assert await inbound_store.opted_out(pool, [number]) == {number}
        entry = await inbound_store.get(pool, number)
        assert entry is not None and entry.client_id == s.shop.client.id
        await s.service.sink(InboundPart("mts", "89211234567", "1234", text="СТАРТ"))
        assert await inbound_store.opted_out(pool, [number]) == set()
    actions = await pg.fetch(pool, "SELECT action FROM inbound_messages ORDER BY id")
    assert actions == [("opt_out",), ("opt_in",)]
    assert (s.service.opted_out, s.service.opted_in) == (1, 1)


async def test_a_keyword_rule_for_an_unknown_client_stores_but_does_not_forward(
    pool: aiopg.Pool, work_pool: aiopg.Pool, redis: aioredis.Redis, clean: None, receiver: Receiver
) -> None:
    s = await start(work_pool, redis, receiver)  # no client "pizza"
    async with running(s.service.run()):
        await s.service.sink(InboundPart("mts", "+79211234567", "1234", text="Пицца маргарита"))
    assert await pg.fetch(pool, "SELECT client_id FROM inbound_messages") == [(None,)]
    assert await pg.fetch(pool, "SELECT count(*) FROM webhook_outbox") == [(0,)]


async def test_parts_that_never_complete_are_forwarded_incomplete(
    pool: aiopg.Pool, work_pool: aiopg.Pool, redis: aioredis.Redis, clean: None, receiver: Receiver
) -> None:
    s = await start(work_pool, redis, receiver, part_ttl_s=0.2)
    first, _, third = udh_parts("Ж" * 200, 9)
    async with running(s.service.run(), webhooks(work_pool).run()):
        await asyncio.gather(s.service.sink(first), s.service.sink(third))
        _, body = await receiver.next()
    assert (body["data"]["parts"], body["data"]["total"], body["data"]["complete"]) == (2, 3, False)
    assert body["data"]["text"] == "Ж" * 133
    assert s.service.expired == 1


async def test_a_full_writer_refuses_so_that_the_smsc_retries(
    pool: aiopg.Pool, work_pool: aiopg.Pool, redis: aioredis.Redis, clean: None, receiver: Receiver
) -> None:
    s = await start(work_pool, redis, receiver, queue_limit=1)  # not running: the first fills it
    s.service.sink(InboundPart("mts", "+79211234567", "1234", text="a"))
    refused = s.service.sink(InboundPart("mts", "+79211234567", "1234", text="b"))
    with pytest.raises(Exception, match="inbound"):
        await refused
    assert s.service.refused == 1


# -- over a real SMPP bind ---------------------------------------------------------------------


@pytest.fixture
async def smsc() -> AsyncIterator[SmscSimulator]:
    sim = SmscSimulator(SmscConfig(port=0, system_id="smsgw", password="secret"))
    await sim.start()
    yield sim
    await sim.stop()


@contextlib.asynccontextmanager
async def bound(smsc: SmscSimulator, service: InboundService) -> AsyncIterator[SmppProvider]:
    settings = SmppSettings(
        name="sim",
        host="127.0.0.1",
        port=smsc.port,
        system_id="smsgw",
        password="secret",
        close_timeout=2.0,
        reconnect_min=0.05,
    )
    receipts: list[Receipt] = []
    provider = SmppProvider(settings, receipts.append, service.sink)
    await provider.start()
    try:
        yield provider
    finally:
        await provider.close()


@pytest.mark.parametrize("concat", ["udh", "sar", "payload"])
async def test_multipart_cyrillic_mo_over_smpp_is_joined_and_forwarded(
    pool: aiopg.Pool,
    work_pool: aiopg.Pool,
    redis: aioredis.Redis,
    clean: None,
    receiver: Receiver,
    smsc: SmscSimulator,
    concat: Any,
) -> None:
    s = await start(work_pool, redis, receiver)
    async with running(s.service.run(), webhooks(work_pool).run()), bound(smsc, s.service):
        parts = smsc.send_mo("smsgw", "79211234567", "1234", LONG, concat=concat)
        _, body = await receiver.next()
    assert parts == (1 if concat == "payload" else 3)
    data = body["data"]
    assert (data["from"], data["to"], data["text"], data["complete"]) == (
        "+79211234567",
        "1234",
        LONG,
        True,
    )
    assert await pg.fetch(pool, "SELECT body FROM inbound_messages") == [(LONG,)]


async def test_stop_mo_over_smpp_opts_the_number_out(
    pool: aiopg.Pool,
    work_pool: aiopg.Pool,
    redis: aioredis.Redis,
    clean: None,
    receiver: Receiver,
    smsc: SmscSimulator,
) -> None:
    s = await start(work_pool, redis, receiver)
    async with running(s.service.run(), webhooks(work_pool).run()), bound(smsc, s.service):
        smsc.send_mo("smsgw", "79211234567", "1234", "СТОП")
        _, body = await receiver.next()
    assert body["data"]["action"] == "opt_out"
    assert await inbound_store.opted_out(pool, ["+79211234567"]) == {"+79211234567"}


# -- the HTTP API ------------------------------------------------------------------------------


@dataclass
class StandIn:
    """What the inbound handlers use of the Gateway: its pool, settings and key check."""

    pool: aiopg.Pool
    settings: Settings = field(default_factory=Settings)

    async def authenticate(self, key: str) -> Client | None:
        return await client_store.by_key(self.pool, key)


@pytest.fixture
async def http(pool: aiopg.Pool) -> AsyncIterator[str]:
    app = web.Application(middlewares=[errors_middleware])
    app[GATEWAY] = StandIn(pool)  # type: ignore[misc]
    app.add_routes(routes())
    # aiohttp's own access log would write the numbers in the paths: the gateway's masks them
    options = {"access_log": ACCESS_LOG, "access_log_class": MaskedAccessLogger}
    async with listening(app, **options) as port:
        yield f"http://127.0.0.1:{port}"


def session(base: str, client: NewClient) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base, headers={"Authorization": f"Bearer {client.api_key}"})


async def test_http_inbound_lists_the_clients_messages(
    pool: aiopg.Pool,
    work_pool: aiopg.Pool,
    redis: aioredis.Redis,
    clean: None,
    receiver: Receiver,
    http: str,
) -> None:
    s = await start(work_pool, redis, receiver)
    other = await client_store.create(pool, "other")
    async with running(s.service.run()):
        for text in ("первое", "второе"):
            await s.service.sink(InboundPart("mts", "79211234567", "1234", text=text))
    async with session(http, s.shop) as shop, shop.get("/v1/inbound?limit=1") as response:
        assert response.status == 200
        body = await response.json()
    assert [m["text"] for m in body["messages"]] == ["второе"]
    assert body["next_before"] == body["messages"][0]["id"]
    async with session(http, s.shop) as shop:
        async with shop.get(f"/v1/inbound?before={body['next_before']}") as response:
            assert [m["text"] for m in (await response.json())["messages"]] == ["первое"]
        async with shop.get("/v1/inbound?limit=0") as response:
            assert response.status == 422
            assert (await response.json())["error"]["field"] == "limit"
    async with session(http, other) as client, client.get("/v1/inbound") as response:
        assert (await response.json())["messages"] == []
    async with aiohttp.ClientSession(http) as anonymous, anonymous.get("/v1/inbound") as response:
        assert response.status == 401


async def test_http_opt_outs(pool: aiopg.Pool, clean: None, http: str) -> None:
    shop = await client_store.create(pool, "shop")
    other = await client_store.create(pool, "other")
    async with session(http, shop) as api:
        async with api.post("/v1/opt-outs", json={"numbers": ["8 921 123-45-67", "12"]}) as r:
            assert r.status == 422
            assert (await r.json())["error"]["field"] == "numbers[1]"
        async with api.post("/v1/opt-outs", json={"numbers": "+79211234567"}) as r:
            assert (r.status, (await r.json())["error"]["field"]) == (422, "numbers")
        async with api.post("/v1/opt-outs", data=b"{") as r:
            assert (r.status, (await r.json())["error"]["field"]) == (400, "body")
        async with api.post("/v1/opt-outs", json={"numbers": ["8 921 123-45-67"]}) as r:
            assert await r.json() == {"numbers": ["+79211234567"], "added": 1}
        async with api.get("/v1/opt-outs") as r:
            [entry] = (await r.json())["opt_outs"]
            assert (entry["number"], entry["via"]) == ("+79211234567", "api")
        async with api.get("/v1/opt-outs/+79211234567") as r:
            assert (await r.json())["opted_out"] is True
        async with api.get("/v1/opt-outs/89217654321") as r:
            assert await r.json() == {"number": "+79217654321", "opted_out": False}
    async with session(http, other) as api:
        async with api.get("/v1/opt-outs/+79211234567") as r:
            assert (await r.json())["opted_out"] is True  # one list for the whole gateway
        async with api.get("/v1/opt-outs") as r:
            assert (await r.json())["opt_outs"] == []  # but each sees its own entries
        async with api.delete("/v1/opt-outs/+79211234567") as r:
            assert r.status == 409
    async with session(http, shop) as api:
        async with api.delete("/v1/opt-outs/+79211234567") as r:
            assert r.status == 204
        async with api.delete("/v1/opt-outs/+79211234567") as r:
            assert r.status == 404
        async with api.delete("/v1/opt-outs/not-a-number") as r:
            assert (r.status, (await r.json())["error"]["field"]) == (422, "number")
