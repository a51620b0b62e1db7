"""A final state's outbox rows, held for the process that will send them, or due at once."""

from __future__ import annotations

import asyncio
import json
import time

import aiopg

from gateway.adapters import client_store, webhook_store
from gateway.adapters import message_store as store
from gateway.adapters.pg import fetch
from gateway.core.ids import IdGenerator
from gateway.core.lifecycle import State
from gateway.core.message import NewMessage, Priority

IDS = IdGenerator(node=901)
HOOK = "http://127.0.0.1:9/hook"


async def _delivered(pool: aiopg.Pool, hold_s: float) -> tuple[int, list[store.StatusEvent]]:
    mid = IDS.next()
    created = await client_store.create(pool, f"hold-{mid}")
    new = NewMessage(
        created.client.id,
        "+79211234567",
        "Shop",
        "hi",
        Priority.BULK,
        "gsm7",
        1,
        callback_url=HOOK,
    )
    await store.insert(pool, [(mid, new)], 10.0)
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        final = [store.FinalUpdate(mid, State.DELIVERED)]
        return created.client.id, await store.record_final(cur, final, hold_s)


async def test_a_held_row_comes_with_its_event_and_is_not_claimed_until_the_hold_ends(
    pool: aiopg.Pool, clean: None
) -> None:
    client_id, [event] = await _delivered(pool, 0.5)
    hook = event.hook
    assert hook is not None and hook.url == HOOK and hook.message_id == event.message_id
    [(secret,)] = await fetch(
        pool, "SELECT webhook_secret FROM clients WHERE id = %s", (client_id,)
    )
    assert hook.secret == secret and json.loads(hook.payload)["data"]["status"] == "delivered"
    held_at = time.monotonic()
    assert await webhook_store.claim(pool, 10, 60.0) == []  # its sender has it
    # The sender died: the poller takes it once the hold ends, not before.
    [claimed] = await _claimed_within(pool, 5.0)
    assert time.monotonic() - held_at > 0.4  # 0.5 s held, less the statement's own time
    assert (claimed.id, claimed.payload) == (hook.id, hook.payload)


async def _claimed_within(pool: aiopg.Pool, within: float) -> list[webhook_store.Delivery]:
    deadline = time.monotonic() + within
    while not (claimed := await webhook_store.claim(pool, 10, 60.0)):
        assert time.monotonic() < deadline, "never came due"
        await asyncio.sleep(0.02)
    return claimed


async def test_an_unheld_row_is_due_at_once_and_not_handed(pool: aiopg.Pool, clean: None) -> None:
    _, [event] = await _delivered(pool, 0.0)
    assert event.hook is None
    [claimed] = await webhook_store.claim(pool, 10, 60.0)
    assert claimed.message_id == event.message_id


async def test_release_makes_held_rows_due_but_not_delivered_ones(
    pool: aiopg.Pool, clean: None
) -> None:
    _, [first] = await _delivered(pool, 60.0)
    _, [second] = await _delivered(pool, 60.0)
    assert first.hook is not None and second.hook is not None
    await webhook_store.record(pool, [second.hook.id], [], 26.0)
    await webhook_store.release(pool, [first.hook.id, second.hook.id])
    assert [d.id for d in await webhook_store.claim(pool, 10, 60.0)] == [first.hook.id]


async def test_a_failed_attempt_leaves_an_erased_row_given_up(
    pool: aiopg.Pool, clean: None
) -> None:
    """Erasure gives up the callbacks about a number; one in flight then fails."""
    _, [event] = await _delivered(pool, 60.0)
    assert event.hook is not None
    erased = "UPDATE webhook_outbox SET payload = '{\"erased\":true}', gave_up_at = now()"
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(erased)
    await webhook_store.record(pool, [], [(event.hook.id, "HTTP 500", 0.0)], 26.0)
    [(gave_up,)] = await fetch(pool, "SELECT gave_up_at IS NOT NULL FROM webhook_outbox", ())
    assert gave_up and await webhook_store.claim(pool, 10, 60.0) == []
