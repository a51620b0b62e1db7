"""HTTP providers through the whole gateway: HTTP in, the HTTP provider simulator out, its
signed callbacks (or polled reports) back to ``POST /v1/receipts/{provider}``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import aiohttp
import aiopg
import pytest
from aiohttp import web

from gateway.adapters import client_store, pg
from gateway.embedded import ServerUrls, free_port
from gateway.settings import (
    DispatchSettings,
    HttpSettings,
    ProviderConfig,
    Settings,
    WebhookSettings,
    route_table,
)
from loadtest.http_sim import HttpSimConfig, HttpSimulator
from loadtest.smsc import SmscSimulator
from providers.http.dialects import JSON
from providers.http.parse import signature
from providers.http.settings import HttpSettings as HttpProviderSettings
from smsgw.runner import serving
from tests.e2e.conftest import Api, count, gateway_settings, wait_for

CYRILLIC = "Ваш код: 4821. Никому не сообщайте его — «Ёлка»"
NUMBER = "+79211234567"
INVALID = "+79991234567"  # the simulator refuses it: see the ``sim`` fixture
PRICE = Decimal("0.12")


class RecordingSimulator(HttpSimulator):
    """The simulator, keeping the ``Authorization`` header of every JSON API request."""

    def __init__(self, config: HttpSimConfig) -> None:
        super().__init__(config)
        self.authorizations: list[str] = []

    def _json_authorized(self, request: web.Request) -> bool:
        self.authorizations.append(request.headers.get("Authorization", ""))
        return super()._json_authorized(request)


@pytest.fixture
async def sim() -> AsyncIterator[RecordingSimulator]:
    config = HttpSimConfig(
        port=0, api_key="sim-api-key", receipt_delay=0.05, invalid_prefix=INVALID[:5]
    )
    simulator = RecordingSimulator(config)
    await simulator.start()
    yield simulator
    await simulator.stop()


def receipts_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/receipts/web"


def http_provider(
    sim: HttpSimulator, port: int, dialect: str = "json", **changes: Any
) -> ProviderConfig:
    """An account at ``sim`` named ``web``; its receipts come to the gateway on ``port``."""
    c = sim.config
    values: dict[str, Any] = {
        "name": "web",
        "base_url": sim.base_url,
        "dialect": dialect,
        "account": c.account,
        "username": c.account,
        "password": c.auth_token,
        "token": c.api_key,
        "webhook_secret": c.webhook_secret,
        "callback_url": receipts_url(port),
        "close_timeout": 2.0,
    }
    http = HttpProviderSettings(**(values | changes))
    return ProviderConfig("web", "http", http=http, price_per_part=PRICE)


def settings_for(
    port: int, *providers: ProviderConfig, routes: list[dict[str, Any]] | None = None
) -> Settings:
    routing = {} if routes is None else {"routes": routes}
    return Settings(
        data_dir=Path("/tmp/unused"),
        log_level="WARNING",
        http=HttpSettings(port=port),
        dispatch=DispatchSettings(sweep_interval_s=0.2, retry_base_s=0.2),
        webhooks=WebhookSettings(
            retry_base_s=0.2, poll_interval_s=0.1, allow_networks=("127.0.0.0/8",)
        ),
        providers=providers,
        routing=route_table(routing, providers),
    )


@asynccontextmanager
async def open_api(settings: Settings, urls: ServerUrls, pool: aiopg.Pool) -> AsyncIterator[Api]:
    async with serving(settings, urls) as gateway:
        created = await client_store.create(pool, "http-providers", default_sender="Shop")
        headers = {"Authorization": f"Bearer {created.api_key}"}
        base = f"http://127.0.0.1:{settings.http.port}"
        async with aiohttp.ClientSession(base, headers=headers) as http:
            yield Api(gateway, http, created, pool)


async def test_json_dialect_with_signed_callbacks(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sim: RecordingSimulator
) -> None:
    port = free_port()
    async with open_api(settings_for(port, http_provider(sim, port)), server_urls, pool) as api:
        status, body = await api.send(to="8 921 123-45-67", text=CYRILLIC)
        assert status == 202 and body["encoding"] == "ucs2", body
        final = await api.wait_status(body["id"], "delivered")
        web_stats = api.gateway.callbacks["web"].stats
    assert final["provider"] == "web" and final["price"] == "0.120000"
    assert final["error_code"] is None
    assert list(sim.received) == [("json", NUMBER.removeprefix("+"), CYRILLIC)]
    assert sim.authorizations == ["Bearer sim-api-key"]
    assert web_stats.callbacks == 1 and web_stats.receipts_polled == 0


async def test_form_dialect_with_url_signed_callbacks(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sim: RecordingSimulator
) -> None:
    port = free_port()
    provider = http_provider(sim, port, "form")
    async with open_api(settings_for(port, provider), server_urls, pool) as api:
        _, body = await api.send(to=NUMBER, text=CYRILLIC)
        final = await api.wait_status(body["id"], "delivered")
        web_stats = api.gateway.callbacks["web"].stats
    assert final["provider"] == "web"
    assert list(sim.received) == [("form", NUMBER, CYRILLIC)]
    assert web_stats.callbacks == 1 and web_stats.callbacks_rejected == 0


async def test_form_dialect_with_receipts_by_polling_only(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sim: RecordingSimulator
) -> None:
    port = free_port()
    provider = http_provider(sim, port, "form", callback_url="", poll_interval=0.1)
    async with open_api(settings_for(port, provider), server_urls, pool) as api:
        _, body = await api.send(to=NUMBER, text="polled")
        final = await api.wait_status(body["id"], "delivered")
        web_stats = api.gateway.callbacks["web"].stats
    assert final["provider"] == "web" and final["price"] == "0.120000"
    assert list(sim.received) == [("form", NUMBER, "polled")]
    assert sim.stats.status_polls >= 1 and sim.stats.receipts_sent == 0
    assert web_stats.receipts_polled == 1 and web_stats.callbacks == 0


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """As a provider would: no API key, just the (maybe) signed body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        assert response.content_type == "application/json"
        return response.status, dict(await response.json())


def _delivered(provider_id: str) -> bytes:
    item = {"messageId": provider_id, "status": {"groupName": "DELIVERED"}, "error": {"id": 0}}
    return json.dumps({"results": [item]}).encode()


def _signed(secret: str, body: bytes, url: str) -> dict[str, str]:
    spec = JSON.callback.signature
    return {spec.header: signature(spec, secret, body, url), "Content-Type": "application/json"}


async def _provider_id(pool: aiopg.Pool, message_id: str) -> str:
    sql = "SELECT provider_message_id FROM message_parts WHERE message_id = %s"
    return str((await pg.fetch(pool, sql, (int(message_id),)))[0][0])


async def test_receipts_endpoint_refuses_bad_callbacks_with_json(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sim: RecordingSimulator
) -> None:
    """Forged, garbled and misaddressed callbacks change nothing; a genuine one delivers."""
    sim.update(receipt_delay=3600.0)  # the simulator's own receipt never comes in this test
    port = free_port()
    provider = http_provider(sim, port)
    url, secret = receipts_url(port), sim.config.webhook_secret
    async with open_api(settings_for(port, provider), server_urls, pool) as api:
        _, body = await api.send(to=NUMBER, text="forge me")
        await api.wait_status(body["id"], "submitted")
        receipt = _delivered(await _provider_id(pool, body["id"]))
        for headers in ({}, {"X-Signature": "forged"}, _signed("not-the-secret", receipt, url)):
            status, answer = await _post(url, receipt, headers)
            assert status == 401, answer
            error = answer["error"]
            assert error["code"] == "callback_refused" and error["field"] == "signature"
            assert "signature" in error["message"]
        status, answer = await _post(url, b"\x00{not json", _signed(secret, b"\x00{not json", url))
        assert status == 400 and answer["error"]["field"] == "body", answer
        assert (await api.get(body["id"]))["status"] == "submitted"
        missing = url.replace("/web", "/nobody")
        status, answer = await _post(missing, receipt, _signed(secret, receipt, missing))
        assert status == 404 and answer["error"]["field"] == "provider", answer
        status, answer = await _post(url, receipt, _signed(secret, receipt, url))
        assert (status, answer) == (200, {"receipts": 1, "inbound": 0})
        await api.wait_status(body["id"], "delivered")


async def _at_least(sim: HttpSimulator, counter: str, n: int) -> bool:
    return int(getattr(sim.stats, counter)) >= n


async def test_throttling_and_server_errors_are_retried(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, sim: RecordingSimulator
) -> None:
    port = free_port()
    sim.update(throttle_ratio=1.0)
    async with open_api(settings_for(port, http_provider(sim, port)), server_urls, pool) as api:
        ids = [(await api.send(to=NUMBER, text=f"retried {n}"))[1]["id"] for n in range(5)]
        await wait_for(lambda: _at_least(sim, "throttled", 5))
        sim.update(throttle_ratio=0.0, error_ratio=1.0)
        await wait_for(lambda: _at_least(sim, "server_errors", 5))
        sim.update(error_ratio=0.0)
        finals = [await api.wait_status(i, "delivered", within=30) for i in ids]
    assert {f["provider"] for f in finals} == {"web"}
    assert sum(f["attempts"] for f in finals) >= len(ids) + 10
    assert sim.stats.accepted == len(ids)  # each taken once, however often refused


@pytest.mark.parametrize(
    ("dialect", "code"), [("json", "http:REJECTED_DESTINATION"), ("form", "http:21211")]
)
async def test_invalid_number_is_rejected_with_the_provider_code(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    sim: RecordingSimulator,
    dialect: str,
    code: str,
) -> None:
    port = free_port()
    async with open_api(
        settings_for(port, http_provider(sim, port, dialect)), server_urls, pool
    ) as api:
        _, body = await api.send(to=INVALID, text="nobody home")
        final = await api.wait_status(body["id"], "rejected")
    assert final["error_code"] == code
    assert sim.stats.invalid == 1 and sim.stats.accepted == 0


@pytest.mark.parametrize("dialect", ["json", "form"])
async def test_inbound_callback_is_accepted_and_stored(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    sim: RecordingSimulator,
    dialect: Literal["json", "form"],
) -> None:
    port = free_port()
    provider = http_provider(sim, port, dialect)
    async with open_api(settings_for(port, provider), server_urls, pool):
        status = await sim.inject_inbound(
            dialect, NUMBER, "+79001234567", "Привет, это ответ", receipts_url(port)
        )
        assert 200 <= status < 300
    sql = "SELECT provider, source, body FROM inbound_messages"
    assert await pg.fetch(pool, sql) == [("web", NUMBER, "Привет, это ответ")]


async def test_smpp_and_http_providers_in_one_gateway(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    sim: RecordingSimulator,
    smsc: SmscSimulator,
) -> None:
    """``web`` is cheaper for +7921 only; everything else goes to the SMPP ``sim``."""
    port = free_port()
    [smpp] = gateway_settings(smsc.port).providers
    routes = [
        {"provider": "sim", "prefixes": ["+"], "price_per_part": "0.35"},
        {"provider": "web", "prefixes": ["+"], "price_per_part": "0.50"},
        {"provider": "web", "prefixes": ["+7921"], "price_per_part": "0.12"},
    ]
    settings = settings_for(port, smpp, http_provider(sim, port), routes=routes)
    async with open_api(settings, server_urls, pool) as api:
        _, to_web = await api.send(to=NUMBER, text="over HTTP")
        _, to_smpp = await api.send(to="+74951234567", text="over SMPP")
        web_final = await api.wait_status(to_web["id"], "delivered")
        smpp_final = await api.wait_status(to_smpp["id"], "delivered")
    assert (web_final["provider"], web_final["price"]) == ("web", "0.120000")
    assert (smpp_final["provider"], smpp_final["price"]) == ("sim", "0.350000")
    assert list(sim.received) == [("json", NUMBER.removeprefix("+"), "over HTTP")]
    assert smsc.stats.submits == 1
    assert await count(pool, "SELECT count(*) FROM message_parts WHERE provider = 'web'") == 1
