"""A provider that hangs does not stall the others (invariant 7 of shared/DESIGN.md).

Two simulators, "slow" the cheaper one. Mid-run "slow" stops answering anything (its
binds stay open): its window fills, its submissions time out and fail over, and the
dispatcher keeps sending through "fast" meanwhile. Every message is delivered.
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


@pytest.mark.timeout(120)
async def test_a_hung_provider_does_not_stall_the_others(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    two_smscs: tuple[SmscSimulator, SmscSimulator],
) -> None:
    slow, fast = two_smscs
    settings = routed_settings(
        {
            "providers": [
                smpp_provider("slow", slow.port, quarantine=60.0),
                smpp_provider("fast", fast.port, quarantine=60.0),
            ],
            "routes": [
                {"provider": "slow", "prefixes": ["+7"], "price_per_part": "0.20"},
                {"provider": "fast", "prefixes": ["+7"], "price_per_part": "0.40"},
            ],
        }
    )
    async with serving_api(settings, server_urls, pool) as api:
        await wait_for(lambda: providers_ready(api.gateway))
        await _post(api.http, 200)
        slow.set_hang(True)
        await _post(api.http, 400)
        delivered = "SELECT count(*) FROM messages WHERE state = 41"
        await wait_for(lambda: count_at_least(pool, delivered, 600), within=60)
    assert await count(pool, "SELECT count(*) FROM messages") == 600
    assert fast.stats.submits > 300  # the fast provider carried what the hung one could not


async def _post(http: aiohttp.ClientSession, n: int) -> None:
    messages = [{"to": f"+7921{i:07d}", "text": f"Код {i}"} for i in range(n)]
    async with http.post("/v1/messages/batch", json={"messages": messages}) as response:
        assert response.status == 202, await response.text()
