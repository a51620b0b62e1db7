"""HTTP in, SMPP out, receipt back: the walking skeleton end to end."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import aiopg

from gateway.adapters import client_store
from gateway.core.validation import Context, parse_message
from gateway.embedded import ServerUrls
from loadtest.smsc import SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import Api, gateway_settings, wait_for


async def test_message_is_delivered_end_to_end(api: Api) -> None:
    status, body = await api.send(to="8 921 123-45-67", text="Привет! Ваш код 4821")
    assert status == 202, body
    assert body["to"] == "+79211234567" and body["encoding"] == "ucs2" and body["parts"] == 1
    final = await api.wait_status(body["id"], "delivered")
    assert final["provider"] == "sim" and final["price"] == "0.350000"
    assert final["accepted_at"] <= final["submitted_at"] <= final["done_at"]


async def test_provider_tps_is_paced(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator
) -> None:
    """100 single-part messages at tps = 50 take about two seconds, evenly."""
    settings = gateway_settings(smsc.port)
    provider = dataclasses.replace(settings.providers[0], tps=50.0)
    settings = dataclasses.replace(settings, providers=(provider,))
    async with serving(settings, server_urls) as gateway:
        created = await client_store.create(pool, "tps")
        ctx = Context(client_id=created.client.id, now=datetime.now(UTC), default_sender="Shop")
        message = parse_message({"to": "+79211234567", "text": "paced"}, ctx)
        started = time.monotonic()
        await gateway.submit.accept([message] * 100)
        await wait_for(lambda: _submitted(smsc, 100), within=30)
        assert time.monotonic() - started >= 100 / 50 - 0.2  # the burst is 50 ms worth


async def _submitted(smsc: SmscSimulator, n: int) -> bool:
    return smsc.stats.submits >= n
