"""Inbound messages and opt-out through the whole gateway: SMPP in, stored, enforced."""

from __future__ import annotations

from typing import Any

import aiopg

from loadtest.smsc import SmscSimulator
from tests.e2e.conftest import Api, count, wait_for

NUMBER = "+79211234567"


async def _final(api: Api, message_id: str) -> dict[str, Any]:
    return await api.wait_status(message_id, "delivered", "rejected", "failed")


async def test_opt_out_stops_bulk_only(api: Api) -> None:
    async with api.http.post("/v1/opt-outs", json={"numbers": [NUMBER]}) as response:
        assert response.status in (200, 201), await response.text()
    _, bulk = await api.send(to=NUMBER, text="Скидки до 50 %!", priority="bulk")
    _, otp = await api.send(to=NUMBER, text="Ваш код: 1234", priority="otp")
    assert (await _final(api, bulk["id"]))["error_code"] == "opted_out"
    assert (await _final(api, bulk["id"]))["status"] == "rejected"
    assert (await _final(api, otp["id"]))["status"] == "delivered"


async def test_stop_by_sms_opts_out(api: Api, smsc: SmscSimulator, pool: aiopg.Pool) -> None:
    await wait_for(lambda: _ready(api))
    smsc.send_mo("smsgw", NUMBER.removeprefix("+"), "1234", "СТОП")
    sql = "SELECT count(*) FROM opt_outs WHERE number = %s"
    await wait_for(lambda: count(pool, sql, NUMBER), within=10)
    _, bulk = await api.send(to=NUMBER, text="Распродажа", priority="bulk")
    assert (await _final(api, bulk["id"]))["error_code"] == "opted_out"


async def test_long_mo_is_joined_and_stored(
    api: Api, smsc: SmscSimulator, pool: aiopg.Pool
) -> None:
    await wait_for(lambda: _ready(api))
    text = "Здравствуйте! Посылка не пришла, номер заказа 12345. " * 3
    assert smsc.send_mo("smsgw", "79211234567", "1234", text) > 1
    sql = "SELECT count(*) FROM inbound_messages WHERE body = %s AND parts = total"
    await wait_for(lambda: count(pool, sql, text), within=10)


async def _ready(api: Api) -> bool:
    return all(p.ready for p in api.gateway.providers.values())
