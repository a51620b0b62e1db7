"""Inbound parts joined in PostgreSQL, messages, forwards and the opt-out list (real server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiopg

from gateway.adapters import client_store, inbound_store, pg
from gateway.adapters.inbound_store import NewInbound
from gateway.core.inbound import (
    Decided,
    ForwardRule,
    InboundSettings,
    Joined,
    OptAction,
    Piece,
    Rules,
    decide,
    join,
    piece_of,
)
from providers.base import InboundPart
from providers.encoding import encode_parts

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def pieces(text: str, ref: int, source: str = "79211234567") -> list[Piece]:
    return [
        piece_of(
            InboundPart("mts", source, "1234", p.data_coding, p.esm_class, p.short_message),
            "RU",
            NOW,
        )
        for p in encode_parts(text, ref, max_parts=20)
    ]


async def add(pool: aiopg.Pool, batch: Sequence[Piece]) -> list[list[Piece]]:
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        return await inbound_store.add_parts(cur, batch)


async def expire(pool: aiopg.Pool, ttl_s: float) -> list[list[Piece]]:
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        return await inbound_store.expire_parts(cur, ttl_s, 100)


async def waiting(pool: aiopg.Pool) -> int:
    rows = await pg.fetch(pool, "SELECT count(*) FROM inbound_parts WHERE joined_at IS NULL")
    return int(rows[0][0])


TEXT = "Здравствуйте! Хочу изменить адрес доставки заказа, " * 4  # 4 UCS-2 parts


async def test_parts_join_once_all_have_arrived(pool: aiopg.Pool, clean: None) -> None:
    first, second, third, fourth = pieces(TEXT, 7)
    assert await add(pool, [third]) == []
    assert await add(pool, [first, fourth]) == []
    [group] = await add(pool, [second])
    assert join(group).text == TEXT
    assert await waiting(pool) == 0
    stored = await pg.fetch(pool, "SELECT DISTINCT length(payload) FROM inbound_parts")
    assert stored == [(32,)]  # joined parts keep only a digest (152-FZ: no text lying about)


async def test_repeated_parts_are_ignored_also_after_the_join(
    pool: aiopg.Pool, clean: None
) -> None:
    parts = pieces(TEXT, 8)
    assert await add(pool, parts[:2] + parts[:1]) == []
    assert len(await add(pool, parts[2:])) == 1
    assert await add(pool, parts) == []  # the SMSC sent everything again
    assert await waiting(pool) == 0


async def test_a_reused_reference_is_a_new_message(pool: aiopg.Pool, clean: None) -> None:
    old, new = pieces(TEXT, 9), pieces(TEXT.upper(), 9)
    assert len(await add(pool, old)) == 1
    assert await add(pool, new[:3]) == []
    [group] = await add(pool, new[3:])
    assert join(group).text == TEXT.upper()


async def test_messages_from_different_numbers_do_not_mix(pool: aiopg.Pool, clean: None) -> None:
    a, b = pieces(TEXT, 3, "79211234567"), pieces(TEXT.upper(), 3, "79217654321")
    groups = await add(pool, a[:2] + b[2:] + a[2:] + b[:2])
    assert sorted(join(g).text for g in groups) == sorted([TEXT, TEXT.upper()])


async def test_concurrent_writers_join_each_message_exactly_once(
    pool: aiopg.Pool, clean: None
) -> None:
    """Each part in its own transaction, all at once: without the per-message lock two
    writers could each miss the other's uncommitted part and nobody would join."""
    messages = [pieces(TEXT, ref) for ref in range(1, 9)]
    results = await asyncio.gather(*(add(pool, [p]) for m in messages for p in m))
    groups = [g for r in results for g in r]
    assert sorted(join(g).text for g in groups) == [TEXT] * len(messages)
    assert await waiting(pool) == 0


async def test_expired_parts_come_back_grouped(pool: aiopg.Pool, clean: None) -> None:
    parts = pieces(TEXT, 11)
    assert await add(pool, [parts[0], parts[2]]) == []
    assert await expire(pool, 3600) == []
    [group] = await expire(pool, 0)
    joined = join(group)
    assert (joined.parts, joined.total, joined.complete) == (2, 4, False)
    assert await waiting(pool) == 0


async def test_joined_parts_are_forgotten_after_the_ttl(pool: aiopg.Pool, clean: None) -> None:
    await add(pool, pieces(TEXT, 12))
    await expire(pool, 0)
    assert await pg.fetch(pool, "SELECT count(*) FROM inbound_parts") == [(0,)]


# -- messages, forwards, opt-outs ----------------------------------------------------------


def decided(text: str, source: str = "+79211234567", client: str | None = None) -> Decided:
    forward = (ForwardRule(client, "http://127.0.0.1:1/hook"),) if client else ()
    rules = Rules.of(InboundSettings(forward=forward), "RU")
    [d] = decide([Joined("mts", source, "1234", text, 1, 1, NOW)], rules)
    return d


def item(message_id: int, d: Decided) -> NewInbound:
    return NewInbound(message_id, d, json.dumps({"id": str(message_id), "text": d.message.text}))


async def record(pool: aiopg.Pool, items: Sequence[NewInbound]) -> int:
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        forwards = await inbound_store.record(cur, items)
        await inbound_store.apply_opt_changes(cur, [i for i in items if i.decided.action])
        return forwards


async def test_messages_are_stored_and_forwarded_for_known_clients(
    pool: aiopg.Pool, clean: None
) -> None:
    shop = await client_store.create(pool, "shop")
    items = [item(1, decided("Привет", client="shop")), item(2, decided("hi", client="nobody"))]
    items.append(item(3, decided("no rule")))
    assert await record(pool, items) == 1
    assert await record(pool, items) == 0  # a retried batch: nothing twice
    rows = await pg.fetch(pool, "SELECT id, body, client_id FROM inbound_messages ORDER BY id")
    assert rows == [(1, "Привет", shop.client.id), (2, "hi", None), (3, "no rule", None)]
    [(url, payload, client_id)] = await pg.fetch(
        pool, "SELECT url, payload, client_id FROM webhook_outbox"
    )
    assert (url, json.loads(payload)["text"], client_id) == (
        "http://127.0.0.1:1/hook",
        "Привет",
        shop.client.id,
    )
    assert await inbound_store.recent(pool, shop.client.id) == [
        {
            "id": 1,
            "from": "+79211234567",
            "to": "1234",
            "text": "Привет",
            "parts": 1,
            "total": 1,
            "action": None,
            "received_at": NOW,
        }
    ]


async def test_stop_and_start_by_sms(pool: aiopg.Pool, clean: None) -> None:
    number, other = "+79211234567", "+79217654321"
    stop = decided("СТОП!", number)
    assert stop.action is OptAction.OPT_OUT
    await record(pool, [item(1, stop), item(2, decided("stop", other))])
    assert await inbound_store.opted_out(pool, [number, other, "+79990000000"]) == {number, other}
    await record(pool, [item(3, decided("Stop", number))])
    entry = await inbound_store.get(pool, number)
    assert entry is not None and (entry.via, entry.keyword) == ("sms", "СТОП!")  # first kept
    await record(pool, [item(4, decided("СТАРТ", number))])
    assert await inbound_store.opted_out(pool, [number, other]) == {other}


async def test_opt_outs_through_the_api(pool: aiopg.Pool, clean: None) -> None:
    shop = (await client_store.create(pool, "shop")).client.id
    other = (await client_store.create(pool, "other")).client.id
    assert await inbound_store.add(pool, ["+79211234567", "+79217654321"], shop) == 2
    assert await inbound_store.add(pool, ["+79211234567"], other) == 0
    await record(pool, [item(1, decided("STOP", "+79210000000", client="other"))])
    assert [e.number for e in await inbound_store.listing(pool, shop)] == [
        "+79211234567",
        "+79217654321",
    ]
    assert [e.number for e in await inbound_store.listing(pool, other)] == ["+79210000000"]
    assert len(await inbound_store.listing(pool, None)) == 3
    page = await inbound_store.listing(pool, shop, after="+79211234567", limit=1)
    assert [e.number for e in page] == ["+79217654321"]
    assert not await inbound_store.remove(pool, "+79211234567", other)  # not its entry
    assert not await inbound_store.remove(pool, "+79210000000", other)  # the subscriber's STOP
    assert await inbound_store.remove(pool, "+79211234567", shop)
    assert await inbound_store.remove(pool, "+79210000000")  # staff may
    assert await inbound_store.opted_out(pool, []) == set()


async def test_recent_pages_newest_first(pool: aiopg.Pool, clean: None) -> None:
    shop = (await client_store.create(pool, "shop")).client.id
    await record(pool, [item(i, decided(f"m{i}", client="shop")) for i in range(1, 6)])
    page: list[dict[str, Any]] = await inbound_store.recent(pool, shop, limit=2)
    assert [m["id"] for m in page] == [5, 4]
    page = await inbound_store.recent(pool, shop, before=4, limit=10)
    assert [m["id"] for m in page] == [3, 2, 1]
