"""A closed cursor is freed at once, not left for the cycle collector (gateway.adapters.pg)."""

from __future__ import annotations

import gc
import weakref

import aiopg


async def test_a_closed_cursor_is_freed_without_the_cycle_collector(pool: aiopg.Pool) -> None:
    gc.disable()  # only reference counting may free it
    try:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT 1")
            gone = weakref.ref(cur)
        del cur
        assert gone() is None
    finally:
        gc.enable()
