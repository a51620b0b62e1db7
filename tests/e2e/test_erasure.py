"""Erasure of one person's data, proven by searching everything afterwards.

Traffic for the person and for someone else goes through the whole gateway (sent,
delivered, receipts, status webhooks, an inbound MO forwarded to a client, a STOP, a
message still waiting), then the person is erased; every text column of every table
(found through information_schema, so a table added later is searched too), every Redis
key and value, and every log line of the test are searched for the number in its common
forms and for the person's texts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import client_store, inbound_store, retention_store
from gateway.adapters.pg import fetch
from gateway.core.inbound import ForwardRule, InboundSettings
from gateway.embedded import ServerUrls
from gateway.services import erasure
from gateway.settings import Secret
from loadtest.smsc import SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import Api, Receiver, count, gateway_settings, wait_for

PERSON, OTHER = "+79215550123", "+79215550456"
PERSON_TEXTS = (
    "Ivan's parcel 7741 is at the door",
    "Иван, ваш код 7741 для входа",
    "Где мой заказ 7741? Жду с понедельника, курьер не звонил, прошу перезвонить вечером.",
)  # the last, an MO of two parts: inbound_parts hold the number too
OTHER_TEXTS = ("Olga's parcel 8852 is at the door", "Где мой заказ 8852?")


@pytest.fixture
async def api_with_forwarding(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator, receiver: Receiver
) -> AsyncIterator[Api]:
    rule = ForwardRule(client="eraser", url=receiver.url)
    settings = dataclasses.replace(
        gateway_settings(smsc.port),
        inbound=InboundSettings(forward=(rule,)),
        otp_secret=Secret("test pepper"),
    )
    async with serving(settings, server_urls) as gateway:
        created = await client_store.create(
            pool, "eraser", callback_url=receiver.url, default_sender="Shop"
        )
        headers = {"Authorization": f"Bearer {created.api_key}"}
        base = f"http://127.0.0.1:{settings.http.port}"
        async with aiohttp.ClientSession(base, headers=headers) as http:
            yield Api(gateway, http, created, pool)


async def traffic(api: Api, smsc: SmscSimulator, to: str, texts: tuple[str, ...]) -> list[str]:
    """Sent and delivered (with a status webhook), an MO forwarded; returns message ids."""
    ids = []
    for n, priority in enumerate(("transactional", "bulk")):
        status, body = await api.send(
            to=to, text=texts[0], priority=priority, client_ref=f"{to}-{n}"
        )
        assert status in (200, 201, 202), body
        ids.append(body["id"])
    async with api.http.post("/v1/otp", json={"to": to}) as response:  # Redis counters too
        assert response.status in (200, 201, 202), await response.text()
        ids.append((await response.json())["message_id"])
    for mid in ids:
        await api.wait_status(mid, "delivered")
    smsc.send_mo("smsgw", to[1:], "1234", texts[-1])
    return ids


async def everything_settled(pool: aiopg.Pool) -> bool:
    waiting = await count(
        pool,
        "SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL",
    )
    inbound = await count(pool, "SELECT count(*) FROM inbound_messages")
    return waiting == 0 and inbound == 3 and await count(pool, "SELECT count(*) FROM opt_outs") == 1


async def test_erase_leaves_no_trace_and_keeps_the_rest(
    api_with_forwarding: Api,
    smsc: SmscSimulator,
    pool: aiopg.Pool,
    redis: aioredis.Redis,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = api_with_forwarding
    caplog.set_level(logging.DEBUG)
    await wait_for(lambda: _ready(api))
    person_ids = await traffic(api, smsc, PERSON, PERSON_TEXTS)
    other_ids = await traffic(api, smsc, OTHER, OTHER_TEXTS)
    smsc.send_mo("smsgw", PERSON[1:], "1234", "STOP")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _, waiting = await api.send(to=PERSON, text=PERSON_TEXTS[1], send_at=later)
    await wait_for(lambda: everything_settled(pool), within=20)
    other_before = await _rows_of(pool, OTHER)
    before = set(await _found_in_tables(pool, PERSON_TEXTS))  # the search does find them
    assert before >= {
        "messages.destination",
        "messages.body",
        "client_refs.client_ref",
        "webhook_outbox.payload",
        "inbound_messages.source",
        "inbound_messages.body",
        "inbound_parts.source",
        "opt_outs.number",
        "otp_challenges.destination",
    }
    assert await _found_in_redis(redis, PERSON_TEXTS) != []

    done = await erasure.erase(pool, redis, PERSON, "dpo@example", f"request from {PERSON}")

    assert done.database["messages"] == 4 and done.database["opt_outs"] == 1
    assert done.database["otp_challenges"] == 1 and done.database["inbound_parts"] == 2
    assert done.database["inbound_messages"] == 2 and done.redis["stream_entries"] >= 1
    assert (await api.get(waiting["id"]))["status"] == "rejected"  # never sent now
    assert await _found_in_tables(pool, PERSON_TEXTS) == []
    assert await _found_in_redis(redis, PERSON_TEXTS) == []
    assert _found_in_logs(caplog.records, PERSON_TEXTS) == []
    assert await _rows_of(pool, OTHER) == other_before  # other people untouched
    assert await _found_in_redis(redis, OTHER_TEXTS[-1:], OTHER) != []  # their MO still there
    assert await inbound_store.opted_out(pool, [PERSON, OTHER]) == {PERSON}  # still honoured
    await _aggregates_kept(pool, len(person_ids) + 1 + len(other_ids))
    await _audited(pool, done.audit_id)


async def _ready(api: Api) -> bool:
    return all(p.ready for p in api.gateway.providers.values())


def _patterns(texts: tuple[str, ...], number: str = PERSON) -> list[re.Pattern[str]]:
    digits = number[1:]
    forms = {number, digits, "8" + digits[1:]} if number == PERSON else {number, digits}
    numbers = [re.compile(rf"(?<!\d){re.escape(f)}(?!\d)") for f in forms]
    spaced = re.compile(r"\D?".join(digits[1:]))  # +7 921 555-01-23 and the like
    return [*numbers, spaced, *(re.compile(re.escape(t)) for t in texts)]


async def _text_columns(pool: aiopg.Pool) -> list[tuple[str, str]]:
    return [
        (t, c)
        for t, c in await fetch(
            pool,
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
            "AND c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')",
        )
    ]


async def _found_in_tables(pool: aiopg.Pool, texts: tuple[str, ...]) -> list[str]:
    found = []
    columns = await _text_columns(pool)
    assert len({t for t, _ in columns}) >= 10  # the search saw the schema
    for table, column in columns:
        values = await fetch(pool, f'SELECT "{column}"::text FROM "{table}"')
        if any(p.search(v) for (v,) in values if v for p in _patterns(texts)):
            found.append(f"{table}.{column}")
    return found


async def _redis_values(redis: aioredis.Redis, key: bytes) -> list[Any]:
    kind = (await redis.type(key)).decode()
    if kind == "string":
        return [await redis.get(key)]
    if kind == "hash":
        return [*(await redis.hgetall(key)).items()]
    if kind == "list":
        return list(await redis.lrange(key, 0, -1))
    if kind == "set":
        return list(await redis.smembers(key))
    if kind == "zset":
        return list(await redis.zrange(key, 0, -1))
    return [fields for _, fields in await redis.xrange(key)] if kind == "stream" else []


async def _found_in_redis(
    redis: aioredis.Redis, texts: tuple[str, ...], number: str = PERSON
) -> list[str]:
    found = []
    async for key in redis.scan_iter(count=500):
        blob = " ".join(_strings([key, await _redis_values(redis, key)]))
        if any(p.search(blob) for p in _patterns(texts, number)):
            found.append(key.decode())
    return found


def _strings(value: Any) -> list[str]:
    """Every string in a nest of bytes, tuples, lists and dicts, decoded as UTF-8."""
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace")]
    if isinstance(value, dict):
        return _strings(list(value.items()))
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    return [str(value)]


def _found_in_logs(records: list[logging.LogRecord], texts: tuple[str, ...]) -> list[str]:
    return [r.name for r in records if any(p.search(r.getMessage()) for p in _patterns(texts))]


async def _rows_of(pool: aiopg.Pool, number: str) -> list[Any]:
    return [
        await fetch(pool, "SELECT * FROM messages WHERE destination = %s ORDER BY id", (number,)),
        await fetch(
            pool, "SELECT * FROM inbound_messages WHERE source = %s ORDER BY id", (number,)
        ),
        await fetch(
            pool,
            "SELECT payload FROM webhook_outbox WHERE payload LIKE %s ORDER BY id",
            (f"%{number}%",),
        ),
    ]


async def _aggregates_kept(pool: aiopg.Pool, sent: int) -> None:
    assert await count(pool, "SELECT count(*) FROM messages") == sent
    await retention_store.rollup_day(pool, datetime.now(UTC).date())
    assert await count(pool, "SELECT sum(messages) FROM daily_stats") == sent


async def _audited(pool: aiopg.Pool, audit_id: int) -> None:
    key = (await fetch(pool, "SELECT key FROM erasure_key"))[0][0]
    [(action, actor, reason, subject, counts)] = await fetch(
        pool,
        "SELECT action, actor, reason, subject_hash, counts FROM audit_log WHERE id = %s",
        (audit_id,),
    )
    assert (action, actor) == ("erase", "dpo@example")
    assert bytes(subject) == hashlib.sha256(bytes(key) + PERSON.encode()).digest()
    assert PERSON[1:] not in reason and counts["messages"] == 4
