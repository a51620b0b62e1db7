"""No provider up: a message waits for one without spending its attempts (a message that
spent them while its only route was down failed after 20, well within its validity)."""

from __future__ import annotations

import aiopg

from gateway.adapters import pg
from gateway.embedded import ServerUrls, free_port
from tests.e2e.conftest import gateway_settings, serving_api, wait_for

SQL = "SELECT attempts, error_code, state FROM messages WHERE id = %s"


async def test_a_message_waiting_for_a_provider_spends_no_attempt(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool
) -> None:
    nothing_listens = free_port()  # the only provider never binds
    async with serving_api(gateway_settings(nothing_listens), server_urls, pool) as api:
        status, body = await api.send(to="+79211234567", text="waiting for a route")
        assert status == 202, body

        async def deferred() -> tuple[int, str, int] | None:
            rows = await pg.fetch(pool, SQL, (int(body["id"]),))
            return rows[0] if rows and rows[0][1] is not None else None

        attempts, code, state = await wait_for(deferred, within=15.0)
    assert code == "none_up" and state < 30  # deferred, not failed
    assert attempts == 0  # the claim's attempt given back: no provider saw it
