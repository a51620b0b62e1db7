"""The routing API: simulate a route, price a number, live pool state, reload the table."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters import pool_state
from gateway.services.reload import SettingsWatcher
from gateway.settings import Settings, route_table
from tests.e2e.conftest import Api, wait_for

TABLE = """
[[providers]]
name = "sim"
host = "127.0.0.1"
port = 1
system_id = "smsgw"
password = "secret"

[[routes]]
provider = "sim"
prefixes = ["+7"]
price_per_part = "{price}"
"""


async def _json(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with api.http.request(method, path, **kwargs) as response:
        return response.status, await response.json()


async def test_simulate_explains_the_route(api: Api) -> None:
    await _live(api)
    body = {"to": "8 921 123-45-67", "text": "Привет! " * 20, "from": "Shop"}
    status, found = await _json(api, "POST", "/v1/routes/simulate", json=body)
    assert status == 200, found
    assert found["to"] == "+79211234567" and found["parts"] == 3
    assert (found["outcome"], found["provider"], found["total"]) == ("send", "sim", "1.05")
    assert found["considered"][0]["verdict"] == "chosen"


async def test_simulate_names_the_bad_field(api: Api) -> None:
    status, found = await _json(api, "POST", "/v1/routes/simulate", json={"to": "12", "text": "x"})
    assert status == 422 and found["error"]["field"] == "to"


async def test_rates_price_a_number(api: Api) -> None:
    status, found = await _json(
        api, "GET", "/v1/rates", params={"to": "+79211234567", "parts": "2"}
    )
    assert status == 200, found
    assert found["rates"][0]["provider"] == "sim" and found["rates"][0]["price_per_part"] == "0.35"
    assert found["quote"]["lowest"] == "0.70"
    status, found = await _json(api, "GET", "/v1/rates", params={"to": "nope"})
    assert status == 422 and found["error"]["field"] == "to"
    status, found = await _json(api, "GET", "/v1/rates", params={"to": "+7921", "parts": "0"})
    assert status == 422


async def test_providers_show_live_pool_state(api: Api) -> None:
    found = await _live(api)
    sim = found["providers"][0]
    assert sim["name"] == "sim" and sim["ready"] and sim["binds_up"] == sim["binds_total"] == 1
    assert sim["window_max"] == 50 and len(sim["processes"]) == 1


async def test_metrics_show_the_pool(api: Api) -> None:
    await _live(api)
    async with api.http.get("/metrics") as response:
        assert response.status == 200
        text = await response.text()
    assert 'smsgw_provider_binds_up{provider="sim"} 1.0' in text
    assert 'smsgw_provider_breaker{gate="closed",provider="sim"} 1.0' in text
    assert "smsgw_provider_submitted_total" in text


async def _live(api: Api) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status, found = await _json(api, "GET", "/v1/providers")
        assert status == 200
        return found if found["providers"][0].get("ready") else None

    return dict(await wait_for(probe, within=10))


async def test_pool_state_drops_dead_processes(api: Api) -> None:
    await _live(api)
    redis, prefix = api.gateway.redis, api.gateway.settings.queue.prefix
    await redis.hset(pool_state.key(prefix), "dead:1", '{"at": 0, "providers": []}')
    await pool_state.read(redis, prefix)
    assert not await redis.hexists(pool_state.key(prefix), "dead:1")


def test_reload_replaces_the_route_table(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(TABLE.format(price="0.35"))
    applied: list[Settings] = []
    watcher = SettingsWatcher(path, {}, applied.append)
    path.write_text(TABLE.format(price="0.20"))
    assert watcher.reload()
    assert str(applied[-1].routing.entries[0].price_per_part) == "0.20"
    path.write_text(TABLE.format(price="cheap"))  # a bad edit: the running table stays
    assert not watcher.reload() and len(applied) == 1


def test_gateway_applies_a_reloaded_table(api: Api) -> None:
    gateway = api.gateway
    old = gateway.settings
    table = route_table({"routes": [_route("0.10")]}, old.providers)
    gateway.apply_settings(dataclasses.replace(old, routing=table))
    assert gateway.router is not None and gateway.router.table is table
    assert gateway.settings.routing is table
    other = dataclasses.replace(old.providers[0], name="other")
    unknown = route_table({"routes": [{**_route("0.05"), "provider": "other"}]}, (other,))
    with pytest.raises(ValueError, match="restart"):
        gateway.apply_settings(dataclasses.replace(old, routing=unknown))
    assert gateway.settings.routing is table


def _route(price: str) -> dict[str, Any]:
    return {"provider": "sim", "prefixes": ["+"], "price_per_part": price}


def test_route_command(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(TABLE.format(price="0.35"))
    argv = [sys.executable, "-m", "smsgw.cli", "--config", str(path), "route", "89211234567"]
    shown = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    assert '"provider": "sim"' in shown and '"total": "0.35"' in shown
