"""Receipts reach their message whatever form or order they come in (invariant 4)."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime

import aiopg

from gateway.adapters import client_store
from gateway.core import signing
from gateway.core.validation import Context, parse_message
from gateway.embedded import ServerUrls
from loadtest.smsc import SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import Api, Receiver, count, gateway_settings, wait_for


async def test_hex_submit_ids_and_decimal_receipts_match(api: Api, smsc: SmscSimulator) -> None:
    smsc.update(id_format="hex", receipt_id_format="dec")
    _, body = await api.send(to="+79211234567", text="hex then decimal")
    await api.wait_status(body["id"], "delivered")
    smsc.update(id_format="dec", receipt_id_format="hex")
    _, body = await api.send(to="+79211234567", text="decimal then hex")
    await api.wait_status(body["id"], "delivered")


async def test_receipt_before_submit_response(api: Api, smsc: SmscSimulator) -> None:
    smsc.update(early_receipt_ratio=1.0)
    sent = [(await api.send(to="+79211234567", text=f"early {n}"))[1]["id"] for n in range(20)]
    for message_id in sent:
        await api.wait_status(message_id, "delivered")
    assert smsc.stats.receipts_early >= 20
    assert await count(api.pool, "SELECT count(*) FROM early_receipts") == 0


async def test_duplicate_receipts_change_nothing(api: Api, smsc: SmscSimulator) -> None:
    smsc.update(duplicate_receipt_ratio=1.0, delivered=0.0, undeliverable=1.0)
    _, body = await api.send(to="+79211234567", text="twice")
    final = await api.wait_status(body["id"], "undeliverable")
    await wait_for(lambda: _receipts_sent(smsc, 2))
    assert (await api.get(body["id"]))["status"] == "undeliverable"
    assert final["error_code"]


async def _receipts_sent(smsc: SmscSimulator, n: int) -> bool:
    return smsc.stats.receipts_sent >= n


async def test_multipart_is_delivered_when_every_part_is(api: Api, smsc: SmscSimulator) -> None:
    status, body = await api.send(to="+79211234567", text="Длинное сообщение. " * 12)
    assert status == 202 and body["parts"] == 4
    final = await api.wait_status(body["id"], "delivered")
    assert final["parts_delivered"] == 4 and final["price"] == "1.400000"
    assert await count(api.pool, "SELECT count(*) FROM message_parts WHERE status = 41") == 4


async def test_receipt_after_a_gateway_restart(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator
) -> None:
    """Submitted by one gateway process, its receipt arrives after a new one has bound."""
    smsc.update(receipt_delay=1.0)
    settings = gateway_settings(smsc.port)
    async with serving(settings, server_urls) as first:
        created = await client_store.create(pool, "restart")
        ctx = Context(client_id=created.client.id, now=datetime.now(UTC), default_sender="Shop")
        message = parse_message({"to": "+79211234567", "text": "x"}, ctx)
        [accepted] = await first.submit.accept([message])
        await wait_for(lambda: _state(pool, accepted.id, 30))
    async with serving(gateway_settings(smsc.port), server_urls):
        await wait_for(lambda: _state(pool, accepted.id, 41))


async def _state(pool: aiopg.Pool, message_id: int, state: int) -> bool:
    sql = "SELECT count(*) FROM messages WHERE id = %s AND state = %s"
    return await count(pool, sql, message_id, state) == 1


async def test_status_webhook_is_signed_and_retried(api: Api, receiver: Receiver) -> None:
    receiver.answers = [500]  # the first attempt fails; the retry must carry the same id
    _, body = await api.send(
        to="+79211234567", text="hook", callback_url=receiver.url, client_ref="r1"
    )
    await api.wait_status(body["id"], "delivered")
    await wait_for(lambda: _calls(receiver, 2), within=20)
    (h1, b1), (h2, b2) = receiver.calls[:2]
    assert h1["webhook-id"] == h2["webhook-id"] and b1 == b2
    for headers, raw in receiver.calls[:2]:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert signing.verify(api.client.webhook_secret, lowered, raw, now=int(time.time()))
    payload = json.loads(b2)
    assert payload["data"]["id"] == body["id"] and payload["data"]["status"] == "delivered"
    assert payload["data"]["client_ref"] == "r1"


async def _calls(receiver: Receiver, n: int) -> bool:
    return len(receiver.calls) >= n


async def test_configured_id_bases_match_hex_answers_to_decimal_receipts(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator
) -> None:
    smsc.update(id_format="hex", receipt_id_format="dec")
    settings = gateway_settings(smsc.port)
    provider = dataclasses.replace(settings.providers[0], submit_id_base=16, receipt_id_base=10)
    async with serving(dataclasses.replace(settings, providers=(provider,)), server_urls) as gw:
        created = await client_store.create(pool, "bases")
        ctx = Context(client_id=created.client.id, now=datetime.now(UTC), default_sender="Shop")
        [accepted] = await gw.submit.accept(
            [parse_message({"to": "+79211234567", "text": "x"}, ctx)]
        )
        await wait_for(lambda: _state(pool, accepted.id, 41))
