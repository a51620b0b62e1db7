"""Texts encrypted at rest through the whole gateway, with a real PostgreSQL and SMSC.

The stored columns hold no plaintext, the SMSC receives the text, the API shows it; rows
written before encryption was on, or under a key since rotated out, stay readable.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store, pg, text_cipher
from gateway.core.inbound import ForwardRule, InboundSettings
from gateway.embedded import ServerUrls
from gateway.settings import Secret, Settings
from loadtest.smsc import SmscSimulator
from providers.encoding import decode
from smsgw.runner import serving
from tests.e2e.conftest import Api, Receiver, count, gateway_settings, providers_ready, wait_for

NUMBER = "+79211234567"
KEY_A, KEY_B = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))

Opener = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
async def open_api(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator, receiver: Receiver
) -> AsyncIterator[Opener]:
    """Opens the gateway with the given keys, as often as a test needs (a restart)."""
    created = await client_store.create(pool, "shop", default_sender="Shop")

    @asynccontextmanager
    async def opened(key: str | None, *old: str) -> AsyncIterator[Api]:
        settings = _keyed(gateway_settings(smsc.port), receiver, key, old)
        async with serving(settings, server_urls) as gateway:
            base = f"http://127.0.0.1:{settings.http.port}"
            headers = {"Authorization": f"Bearer {created.api_key}"}
            async with aiohttp.ClientSession(base, headers=headers) as http:
                api = Api(gateway, http, created, pool)
                await wait_for(lambda: providers_ready(gateway))
                yield api

    yield opened
    text_cipher.install(text_cipher.TextCipher())  # the next test's gateway starts plain


def _keyed(
    settings: Settings, receiver: Receiver, key: str | None, old: tuple[str, ...]
) -> Settings:
    store = dataclasses.replace(
        settings.store,
        encryption_key=Secret(key) if key else None,
        old_encryption_keys=tuple(Secret(k) for k in old),
    )
    inbound = InboundSettings(forward=(ForwardRule("shop", receiver.url),))
    return dataclasses.replace(settings, store=store, inbound=inbound)


async def test_texts_are_stored_encrypted_and_sent_and_shown_in_clear(
    open_api: Opener, smsc: SmscSimulator, pool: aiopg.Pool
) -> None:
    text, mo_text = "Ваш код 4821, никому не говорите", "Где мой заказ 77?"
    async with open_api(KEY_A) as api:
        status, sent = await api.send(to=NUMBER, text=text)
        assert status == 202, sent
        await api.wait_status(sent["id"], "delivered")
        await _mo(api, smsc, pool, mo_text, 1)
        shown = await _inbound_texts(api)
    bodies = [r[0] for r in await pg.fetch(pool, "SELECT body FROM messages", ())]
    bodies += [r[0] for r in await pg.fetch(pool, "SELECT body FROM inbound_messages", ())]
    assert len(bodies) == 2 and all(b.startswith(text_cipher.PREFIX) for b in bodies)
    assert not [b for b in bodies if text in b or mo_text in b]
    received = [decode(sm.short_message, sm.data_coding) for sm in smsc.last_submits]
    assert received == [text]
    assert shown == [mo_text]


async def test_plaintext_rows_and_rotated_keys_stay_readable(
    open_api: Opener, smsc: SmscSimulator, pool: aiopg.Pool
) -> None:
    async with open_api(None) as api:
        await _mo(api, smsc, pool, "написано до шифрования", 1)
    async with open_api(KEY_A) as api:
        await _mo(api, smsc, pool, "под старым ключом", 2)
    async with open_api(KEY_B, KEY_A) as api:
        await _mo(api, smsc, pool, "под новым ключом", 3)
        _, sent = await api.send(to=NUMBER, text="после ротации")
        await api.wait_status(sent["id"], "delivered")
        shown = await _inbound_texts(api)
    assert shown == ["под новым ключом", "под старым ключом", "написано до шифрования"]
    assert decode(smsc.last_submits[-1].short_message, 8) == "после ротации"
    key_ids = await pg.fetch(pool, "SELECT split_part(body, ':', 2) FROM inbound_messages", ())
    assert {r[0] for r in key_ids} == {
        "",
        text_cipher.key_id(base64.b64decode(KEY_A)),
        text_cipher.key_id(base64.b64decode(KEY_B)),
    }


async def _mo(api: Api, smsc: SmscSimulator, pool: aiopg.Pool, text: str, stored: int) -> None:
    smsc.send_mo("smsgw", NUMBER.removeprefix("+"), "1234", text)
    sql = "SELECT count(*) FROM inbound_messages"
    await wait_for(lambda: _at_least(pool, sql, stored), within=10)


async def _at_least(pool: aiopg.Pool, sql: str, n: int) -> bool:
    return await count(pool, sql) >= n


async def _inbound_texts(api: Api) -> list[Any]:
    async with api.http.get("/v1/inbound") as response:
        assert response.status == 200, await response.text()
        found = await response.json()
    items = found["messages"] if isinstance(found, dict) else found
    return [item["text"] for item in items]
