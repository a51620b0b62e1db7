"""Bulk that waits for its cheap route never holds the senders urgent traffic needs.

"cheap" allows 20 submit_sm/s; bulk waits for it (the default policy). A burst of bulk
would occupy every sender task waiting for cheap's tokens; instead, past cheap's limit
(its window and a second of tokens) bulk goes back to the queue for a while, its
attempt given back, and OTP messages sent meanwhile spill to "dear" and are delivered.
"""

from __future__ import annotations

import aiohttp
import aiopg
import pytest

from gateway.embedded import ServerUrls
from loadtest.smsc import SmscSimulator
from tests.e2e.conftest import (
    count,
    count_at_least,
    providers_ready,
    routed_settings,
    serving_api,
    smpp_provider,
    wait_for,
)

BULK, OTP = 150, 20


@pytest.mark.timeout(120)
async def test_waiting_bulk_leaves_room_for_otp(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    two_smscs: tuple[SmscSimulator, SmscSimulator],
) -> None:
    cheap, dear = two_smscs
    settings = routed_settings(
        {
            "providers": [
                smpp_provider("cheap", cheap.port, tps=20, window=10),
                smpp_provider("dear", dear.port, window=10),
            ],
            "routes": [
                {"provider": "cheap", "prefixes": ["+7"], "price_per_part": "0.20"},
                {"provider": "dear", "prefixes": ["+7"], "price_per_part": "0.50"},
            ],
        }
    )
    async with serving_api(settings, server_urls, pool) as api:
        await wait_for(lambda: providers_ready(api.gateway))
        await _post(api.http, BULK, "bulk", "Распродажа")
        deferred = "SELECT count(*) FROM messages WHERE error_code = 'waiting_for_route'"
        await wait_for(lambda: count(pool, deferred), within=30)
        await _post(api.http, OTP, "otp", "Код")
        otp_done = "SELECT count(*) FROM messages WHERE priority = 0 AND state = 41"
        await wait_for(lambda: count_at_least(pool, otp_done, OTP), within=30)
        all_done = "SELECT count(*) FROM messages WHERE state = 41"
        await wait_for(lambda: count_at_least(pool, all_done, BULK + OTP), within=60)
    on = "SELECT provider, count(*) FROM messages WHERE priority = %s GROUP BY provider"
    assert await _split(pool, on, 2) == {"cheap": BULK}  # bulk waited for its price
    otp = await _split(pool, on, 0)  # OTP never waits for price: it spills past the queue
    assert otp.get("dear", 0) >= OTP // 2, otp
    tried = "SELECT max(attempts) FROM messages WHERE priority = 2"
    assert await count(pool, tried) <= 2  # deferrals gave their attempt back


async def _post(http: aiohttp.ClientSession, n: int, priority: str, text: str) -> None:
    batch = [{"to": f"+7921{i:07d}", "text": f"{text} {i}", "priority": priority} for i in range(n)]
    async with http.post("/v1/messages/batch", json={"messages": batch}) as response:
        assert response.status == 202, await response.text()


async def _split(pool: aiopg.Pool, sql: str, priority: int) -> dict[str, int]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(sql, (priority,))
        return {provider: int(n) for provider, n in await cur.fetchall()}
