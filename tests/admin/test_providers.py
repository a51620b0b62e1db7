"""The providers page against a real gateway (two SMSC simulators): figures, providers off
and on, routes and prices edited with errors by field; roles and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiopg
import pytest

from admin.app import Admin
from admin.core.providers import provider_views, route_rows, share
from admin.core.roles import Role
from gateway.adapters import client_store, pg, pool_state
from gateway.core.access import Scope
from gateway.embedded import ServerUrls
from gateway.settings import Secret, Settings
from loadtest.smsc import SmscSimulator
from tests.admin.conftest import AdminApp, admin_test_settings
from tests.e2e.conftest import cheap_and_dear, providers_ready, serving_api, two_smscs, wait_for
from tests.loopback import listening

__all__ = ["two_smscs"]  # a fixture of the e2e tests


@pytest.fixture
async def site(
    admin_clean: None,
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    two_smscs: tuple[SmscSimulator, SmscSimulator],
) -> AsyncIterator[AdminApp]:
    first, second = two_smscs
    settings = cheap_and_dear(first.port, second.port)
    async with serving_api(settings, server_urls, pool) as api:
        await wait_for(lambda: providers_ready(api.gateway))
        await wait_for(lambda: _pool_published(api.gateway))
        scopes = {Scope.SEND, Scope.READ, Scope.ADMIN, Scope.OPERATOR}
        key = await client_store.add_key(pool, api.client.client.id, scopes)
        found = admin_test_settings(
            gateway_url=f"http://127.0.0.1:{settings.http.port}", gateway_api_key=Secret(key)
        )
        async with (
            Admin.open(found, Settings(), server_urls.database_url, server_urls.redis_url) as admin,
            listening(admin.http_app()) as port,
        ):
            app = AdminApp(admin, f"http://127.0.0.1:{port}")
            try:
                yield app
            finally:
                for http in app.sessions:
                    await http.close()


async def _pool_published(gateway: Any) -> bool:
    live = await pool_state.read(gateway.redis, gateway.settings.queue.prefix)
    return set(live) == {"cheap", "dear"}


async def _call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": getattr(http, "csrf", ""), "Accept": "application/json"}
    async with http.request(method, path, json=body, headers=headers) as reply:
        is_json = reply.content_type == "application/json"
        return reply.status, await (reply.json() if is_json else reply.text())


async def _audited(pool: aiopg.Pool, action: str) -> list[tuple[Any, ...]]:
    return await pg.fetch(
        pool, "SELECT actor, target, detail FROM admin.audit WHERE action = %s", (action,)
    )


async def test_an_sre_sees_every_provider_and_its_figures(site: AdminApp) -> None:
    sre = await site.client(Role.sre)
    status, html = await _call(sre, "GET", "/providers")
    assert status == 200 and 'data-provider="cheap"' in html and 'data-provider="dear"' in html
    assert "Disable" in html and "Routes and prices" in html
    status, found = await _call(sre, "GET", "/api/providers")
    assert status == 200, found
    cheap = next(p for p in found["providers"] if p["name"] == "cheap")
    assert (cheap["binds_up"], cheap["binds_total"], cheap["gate"]) == (1, 1, "closed")
    assert cheap["ready"] and not cheap["disabled"] and cheap["window_max"] == 20
    assert found["routing"]["source"] == "file"
    status, found = await _call(sre, "GET", "/api/providers?live=1")  # the page's refresh
    assert status == 200 and {p["name"] for p in found["providers"]} == {"cheap", "dear"}


async def test_disable_and_enable_are_audited(site: AdminApp) -> None:
    sre = await site.client(Role.sre, "sre@example.ru")
    status, found = await _call(sre, "POST", "/api/providers/cheap/disable")
    assert status == 200 and found["disabled"] == ["cheap"], found
    _, found = await _call(sre, "GET", "/api/providers")
    assert [p["name"] for p in found["providers"] if p["disabled"]] == ["cheap"]
    status, html = await _call(sre, "GET", "/providers")
    assert "Enable" in html
    status, found = await _call(sre, "POST", "/api/providers/cheap/enable")
    assert status == 200 and found["disabled"] == []
    assert [r[:2] for r in await _audited(site.admin.pool, "provider.disable")] == [
        ("sre@example.ru", "cheap")
    ]
    assert len(await _audited(site.admin.pool, "provider.enable")) == 1
    status, found = await _call(sre, "POST", "/api/providers/nope/disable")
    assert status == 404 and found["error"]["field"] == "name"


async def test_routes_are_checked_by_field_then_saved(site: AdminApp) -> None:
    admin = await site.client(Role.admin, "boss@example.ru")
    _, found = await _call(admin, "GET", "/api/providers")
    version = found["routing"]["version"]
    routes = found["routing"]["effective"]["routes"]
    routes[1]["price_per_part"] = "-0.1"
    body = {"document": {"routes": routes}, "version": version}
    status, found = await _call(admin, "PUT", "/api/providers/routing", body)
    assert status == 422 and found["error"]["field"] == "routes[1].price_per_part", found
    routes[1]["price_per_part"] = "0.15"
    status, found = await _call(admin, "PUT", "/api/providers/routing", body)
    assert status == 200 and found["source"] == "override", found
    assert found["updated_by"] == "boss@example.ru"
    status, found = await _call(admin, "PUT", "/api/providers/routing", body)
    assert status == 409 and found["error"]["field"] == "version"
    [(actor, target, detail)] = await _audited(site.admin.pool, "routing.update")
    assert (actor, target, detail["routes"]) == ("boss@example.ru", "routes", 2)


async def test_who_may_see_and_who_may_change(site: AdminApp) -> None:
    operator = await site.client(Role.operator)
    status, html = await _call(operator, "GET", "/providers")
    assert status == 200 and "Disable" not in html and "Save routes" not in html
    status, found = await _call(operator, "POST", "/api/providers/cheap/disable")
    assert status == 403 and found["error"]["code"] == "forbidden"
    status, found = await _call(operator, "PUT", "/api/providers/routing", {"document": None})
    assert status == 403
    marketer = await site.client(Role.marketer)
    status, _ = await _call(marketer, "GET", "/api/providers")
    assert status == 403
    assert await _audited(site.admin.pool, "provider.disable") == []


def test_figures_are_shares_of_attempts() -> None:
    item = {"name": "a", "kind": "smpp", "submitted": 90, "errors": 6, "throttled": 4}
    [view] = provider_views([item], {"a": {"delivery_rate": 0.5}}, ["a"])
    assert (view.error_rate, view.throttle_rate, view.delivery_rate) == (0.06, 0.04, 0.5)
    assert view.disabled and share(0, 0) is None
    [empty] = provider_views([{"name": "b"}], {}, [])
    assert empty.error_rate is None and empty.gate == "closed" and not empty.ready


def test_route_rows_keep_what_the_form_does_not_edit() -> None:
    route = {"provider": "a", "operators": ["mts"], "countries": ["RU"], "price_per_part": "0.3"}
    [row] = route_rows({"routes": [route, *[]]})
    assert (row.selector, row.values, row.weight) == ("operators", "mts", 1)
    assert row.extra == {"countries": ["RU"]}
    assert row.classes == ("otp", "transactional", "bulk")


async def test_a_gateway_key_without_the_operator_scope_is_named(
    site: AdminApp, server_urls: ServerUrls, pool: aiopg.Pool
) -> None:
    clients = await pg.fetch(pool, "SELECT id FROM clients LIMIT 1")
    key = await client_store.add_key(pool, clients[0][0], {Scope.SEND, Scope.READ})
    url = site.admin.settings.gateway_url
    settings = admin_test_settings(gateway_url=url, gateway_api_key=Secret(key))
    async with (
        Admin.open(settings, Settings(), server_urls.database_url, server_urls.redis_url) as admin,
        listening(admin.http_app()) as port,
    ):
        other = AdminApp(admin, f"http://127.0.0.1:{port}")
        try:
            sre = await other.client(Role.sre)
            status, found = await _call(sre, "GET", "/api/providers")
        finally:
            for http in other.sessions:
                await http.close()
    assert status == 503 and found["error"]["code"] == "gateway_key", found
