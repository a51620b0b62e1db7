"""Operators' routing over the API: routes and prices, providers off and on, shared by
every process through PostgreSQL (gateway/services/routing_admin.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store
from gateway.core.access import Scope
from gateway.embedded import ServerUrls
from gateway.services.routing_admin import RoutingAdmin
from loadtest.smsc import SmscSimulator
from routing import RouteTable, load_table
from tests.e2e.conftest import Api, cheap_and_dear, providers_ready, serving_api
from tests.e2e.conftest import wait_for as wait_until

TO = "+79211234567"


@pytest.fixture
async def api(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    two_smscs: tuple[SmscSimulator, SmscSimulator],
) -> AsyncIterator[Api]:
    first, second = two_smscs
    settings = cheap_and_dear(first.port, second.port)
    async with serving_api(settings, server_urls, pool) as api:
        await wait_until(lambda: providers_ready(api.gateway))
        yield api


@pytest.fixture
async def operator(api: Api) -> AsyncIterator[aiohttp.ClientSession]:
    key = await client_store.add_key(api.pool, api.client.client.id, {Scope.OPERATOR, Scope.READ})
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{api.gateway.settings.http.port}", headers=headers
    ) as http:
        yield http


async def _call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, path, json=body) as response:
        return response.status, await response.json()


async def _chosen(http: aiohttp.ClientSession) -> str:
    status, found = await _call(http, "POST", "/v1/routes/simulate", {"to": TO, "text": "x"})
    assert status == 200, found
    return str(found["provider"])


def _routes(cheap: str, dear: str) -> dict[str, Any]:
    return {
        "routes": [
            {"provider": "cheap", "prefixes": ["+7"], "price_per_part": cheap},
            {"provider": "dear", "prefixes": ["+7"], "price_per_part": dear},
        ]
    }


async def test_a_client_key_may_not_touch_routing(api: Api) -> None:
    status, found = await _call(api.http, "GET", "/v1/admin/routing")
    assert status == 403 and found["error"]["code"] == "scope_missing"
    status, _ = await _call(api.http, "POST", "/v1/admin/providers/cheap/disable")
    assert status == 403


async def test_prices_change_for_every_process(api: Api, operator: aiohttp.ClientSession) -> None:
    status, found = await _call(operator, "GET", "/v1/admin/routing")
    assert status == 200 and found["source"] == "file" and found["disabled"] == []
    version = found["version"]
    assert await _chosen(operator) == "cheap"
    elsewhere = _another_process(api)
    body = {"document": _routes("0.20", "0.10"), "version": version, "by": "sre@example.ru"}
    status, found = await _call(operator, "PUT", "/v1/admin/routing", body)
    assert status == 200 and found["source"] == "override", found
    assert found["version"] == version + 1 and found["updated_by"] == "sre@example.ru"
    assert found["effective"]["routes"][1]["price_per_part"] == "0.10"
    assert await _chosen(operator) == "dear"
    async with _polling(elsewhere):
        await wait_until(lambda: _has_price(elsewhere, "dear", "0.10"), 5.0)
    status, found = await _call(operator, "PUT", "/v1/admin/routing", body)
    assert status == 409 and found["error"]["field"] == "version"
    status, found = await _call(operator, "PUT", "/v1/admin/routing", {"document": None})
    assert status == 200 and found["source"] == "file" and await _chosen(operator) == "cheap"


async def test_a_bad_table_is_refused_by_field_and_nothing_changes(
    api: Api, operator: aiohttp.ClientSession
) -> None:
    _, before = await _call(operator, "GET", "/v1/admin/routing")
    for document, field in [
        (_routes("0.20", "-1"), "document.routes[1].price_per_part"),
        (
            {"routes": [{"provider": "nope", "prefixes": ["+7"], "price_per_part": "1"}]},
            "document.routes[0].provider",
        ),
        ({"routes": "x"}, "document.routes"),
    ]:
        status, found = await _call(operator, "PUT", "/v1/admin/routing", {"document": document})
        assert status == 422 and found["error"]["field"] == field, found
    for body, field in [({}, "document"), ({"document": None, "version": "1"}, "version")]:
        status, found = await _call(operator, "PUT", "/v1/admin/routing", body)
        assert status == 422 and found["error"]["field"] == field, found
    _, after = await _call(operator, "GET", "/v1/admin/routing")
    assert after == before


async def test_a_disabled_provider_takes_no_traffic_and_keeps_its_binds(
    api: Api, operator: aiohttp.ClientSession
) -> None:
    status, found = await _call(operator, "POST", "/v1/admin/providers/cheap/disable", {"by": "a"})
    assert status == 200 and found["disabled"] == ["cheap"]
    assert await _chosen(operator) == "dear"
    status, sent = await api.send(to=TO, text="failover while disabled")
    assert status == 202, sent
    done = await api.wait_status(sent["id"], "delivered")
    assert done["provider"] == "dear"
    assert api.gateway.providers["cheap"].ready  # bound still: its receipts keep coming
    status, found = await _call(api.http, "GET", "/v1/providers/delivery?window_s=600")
    assert status == 200 and found["window_s"] == 600, found
    dear = found["providers"]["dear"]
    assert (dear["submitted"], dear["delivered"], dear["delivery_rate"]) == (1, 1, 1.0)
    status, found = await _call(api.http, "GET", "/v1/providers/delivery?window_s=5")
    assert status == 422 and found["error"]["field"] == "window_s"
    status, found = await _call(operator, "POST", "/v1/admin/providers/cheap/enable")
    assert status == 200 and found["disabled"] == [] and await _chosen(operator) == "cheap"
    status, found = await _call(operator, "POST", "/v1/admin/providers/nope/disable")
    assert status == 404 and found["error"]["field"] == "name"


def _another_process(api: Api) -> RoutingAdmin:
    """What another gateway process runs: its own poller on the same database."""
    names = [p.name for p in api.gateway.settings.providers]
    return RoutingAdmin(api.pool, names, api.gateway.routing_admin.table, _ignore, 0.05)


def _ignore(table: RouteTable, disabled: frozenset[str]) -> None:
    pass


async def _has_price(admin: RoutingAdmin, provider: str, price: str) -> bool:
    return any(
        e.provider == provider and str(e.price_per_part) == price for e in admin.table.entries
    )


@asynccontextmanager
async def _polling(admin: RoutingAdmin) -> AsyncIterator[None]:
    task = asyncio.create_task(admin.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_file_reload_leaves_the_override_on_top(
    api: Api, operator: aiohttp.ClientSession
) -> None:
    gateway = api.gateway
    reloaded = dataclasses.replace(
        gateway.settings, routing=load_table(_routes("0.50", "0.60"), ["cheap", "dear"])
    )
    status, _ = await _call(operator, "PUT", "/v1/admin/routing", {"document": _routes("1", "0.1")})
    assert status == 200
    gateway.apply_settings(reloaded)  # what the settings watcher does on a file change
    assert await _chosen(operator) == "dear"
    _, found = await _call(operator, "GET", "/v1/admin/routing")
    assert found["file"]["routes"][0]["price_per_part"] == "0.50"
    assert found["effective"]["routes"][1]["price_per_part"] == "0.1"
    await _call(operator, "PUT", "/v1/admin/routing", {"document": None})
    assert str(gateway.settings.routing.entries[0].price_per_part) == "0.50"  # the file's now
