"""No number or text in any log line or metric, on every path, at DEBUG.

A whole scenario runs with the root logger at DEBUG and a collector of its own: messages
sent and submitted over SMPP, receipts, status webhooks, an inbound message forwarded to
a client, STOP, validation errors that echo a bad number to the caller, the opt-out
paths with the number in the URL, rates by number. The session-wide scan
(``tests/logscan.py``) repeats the check for every other test.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiopg
import pytest

from gateway.core.inbound import ForwardRule, InboundSettings
from gateway.embedded import ServerUrls
from loadtest.smsc import SmscSimulator
from tests.e2e.conftest import (
    Api,
    Receiver,
    count,
    gateway_settings,
    providers_ready,
    serving_api,
    wait_for,
)
from tests.logscan import CANARY, LeakCollector, leaks_in

NUMBER = "+79211234567"
TEXT = f"Ваш код 4821, {CANARY} ждёт"
MO_TEXT = f"Где мой заказ? {CANARY}"


@pytest.fixture
def collector() -> Iterator[LeakCollector]:
    root = logging.getLogger()
    collector, level = LeakCollector(), root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    yield collector
    root.removeHandler(collector)
    root.setLevel(level)


@pytest.fixture
async def forwarding_api(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator, receiver: Receiver
) -> AsyncIterator[Api]:
    inbound = InboundSettings(forward=(ForwardRule("shop", receiver.url),))
    settings = gateway_settings(smsc.port)
    logged = dataclasses.replace(settings.http, access_log=True)  # paths hold numbers
    settings = dataclasses.replace(settings, log_level="DEBUG", inbound=inbound, http=logged)
    async with serving_api(settings, server_urls, pool, "shop") as api:
        yield api


async def test_a_whole_scenario_logs_no_number_and_no_text(
    forwarding_api: Api,
    smsc: SmscSimulator,
    receiver: Receiver,
    pool: aiopg.Pool,
    collector: LeakCollector,
) -> None:
    api = forwarding_api
    await wait_for(lambda: providers_ready(api.gateway))
    await _send_and_deliver(api, receiver)
    await _inbound(api, smsc, pool)
    await _bad_input(api)
    await _number_paths(api)
    metrics = await _text(api, "GET", "/metrics")
    assert not [line for line in metrics.splitlines() if leaks_in(line, [TEXT, MO_TEXT])]
    assert collector.leaks == []
    assert collector.seen["gateway.access"] >= 10  # the access log was on and scanned


async def _send_and_deliver(api: Api, receiver: Receiver) -> None:
    status, sent = await api.send(to=NUMBER, text=TEXT, callback_url=receiver.url)
    assert status == 202, sent
    await api.wait_status(sent["id"], "delivered")
    assert (await api.get(sent["id"]))["to"] == NUMBER
    await wait_for(lambda: _webhook_for(receiver, sent["id"]))


async def _webhook_for(receiver: Receiver, message_id: str) -> bool:
    return any(message_id in str(payload) for payload in receiver.payloads())


async def _inbound(api: Api, smsc: SmscSimulator, pool: aiopg.Pool) -> None:
    smsc.send_mo("smsgw", NUMBER.removeprefix("+"), "1234", MO_TEXT)
    await wait_for(lambda: count(pool, "SELECT count(*) FROM inbound_messages"), within=10)
    smsc.send_mo("smsgw", NUMBER.removeprefix("+"), "1234", "СТОП")
    sql = "SELECT count(*) FROM opt_outs WHERE number = %s"
    await wait_for(lambda: count(pool, sql, NUMBER), within=10)
    found = await _json(api, "GET", "/v1/inbound")
    assert MO_TEXT in str(found)


async def _bad_input(api: Api) -> None:
    for to in ("+7 921 123-45-6", "8 (921) 123-45-678", "89211234567890"):
        status, body = await api.send(to=to, text=TEXT)
        assert status == 422 and body["error"]["field"] == "to", body
    batch = {"messages": [{"to": "+7921123456", "text": TEXT}, {"to": NUMBER, "text": 5}]}
    async with api.http.post("/v1/messages/batch", json=batch) as response:
        assert response.status < 500, await response.text()
    async with api.http.post("/v1/opt-outs", json={"numbers": ["+7 921 12"]}) as response:
        assert response.status == 422


async def _number_paths(api: Api) -> None:
    other = "+79161234567"
    async with api.http.post("/v1/opt-outs", json={"numbers": [other]}) as response:
        assert response.status in (200, 201)
    assert (await _json(api, "GET", f"/v1/opt-outs/{other}"))["number"] == other
    async with api.http.delete(f"/v1/opt-outs/{other}") as response:
        assert response.status < 300
    async with api.http.get("/v1/rates", params={"to": "8 921 123-45-67"}) as response:
        assert response.status < 500
    async with api.http.get(f"/v1/messages/{NUMBER}") as response:
        assert 400 <= response.status < 500


async def _json(api: Api, method: str, path: str) -> Any:
    async with api.http.request(method, path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _text(api: Api, method: str, path: str) -> str:
    async with api.http.request(method, path) as response:
        assert response.status == 200
        return await response.text()
