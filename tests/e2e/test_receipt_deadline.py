"""A receipt that never comes: the message still ends (``expired``, ``no_receipt``) and its
webhook is sent; messages whose receipts come are left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiopg
import pytest

from gateway.embedded import ServerUrls
from loadtest.smsc import SmscSimulator
from tests.e2e.conftest import Api, Receiver, gateway_settings, serving_api, wait_for

RU = "+79211234567"


@pytest.fixture
async def api(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator
) -> AsyncIterator[Api]:
    settings = gateway_settings(smsc.port, receipt_timeout_s=1.0, receipt_grace_s=3600.0)
    async with serving_api(settings, server_urls, pool) as api:
        yield api


async def test_a_lost_receipt_ends_as_expired_with_a_webhook(
    api: Api, smsc: SmscSimulator, receiver: Receiver
) -> None:
    smsc.update(lost_receipt_ratio=1.0)
    status, body = await api.send(to=RU, text="no receipt for this one", callback_url=receiver.url)
    assert status == 202
    found = await api.wait_status(body["id"], "expired", within=20)
    assert found["error_code"] == "no_receipt" and found["submitted_at"] is not None
    await wait_for(lambda: _hooked(receiver))
    [payload] = receiver.payloads()
    assert payload["data"]["status"] == "expired"
    assert payload["data"]["error_code"] == "no_receipt"


async def test_a_message_with_its_receipt_is_left_alone(api: Api, smsc: SmscSimulator) -> None:
    smsc.update(receipt_delay=0.05)
    status, body = await api.send(to=RU, text="this one is delivered")
    assert status == 202
    assert (await api.wait_status(body["id"], "delivered"))["error_code"] is None


async def _hooked(receiver: Receiver) -> bool:
    return len(receiver.calls) >= 1
