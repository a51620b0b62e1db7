"""Billing and client limits over HTTP: 402 and 429 answers, balances after the outcomes.

The gateway holds 0.50 a part at accept (a fixed quoter); its only route, the SMSC
simulator, serves +7 at 0.35 a part, so a +44 number has no route and fails.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store
from gateway.adapters.client_store import Terms
from gateway.adapters.pg import fetch
from gateway.app import Gateway
from gateway.embedded import ServerUrls
from gateway.services.submit import per_part
from gateway.settings import route_table
from loadtest.smsc import SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import count, gateway_settings, wait_for

D = Decimal
RU, UK = "+79211234567", "+442071234567"


@dataclass
class Client:
    http: aiohttp.ClientSession
    id: int

    async def send(self, **message: Any) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        async with self.http.post("/v1/messages", json=message) as response:
            return response.status, await response.json(), response.headers

    async def batch(self, *messages: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with self.http.post("/v1/messages/batch", json={"messages": messages}) as r:
            return r.status, await r.json()

    async def get(self, path: str) -> dict[str, Any]:
        async with self.http.get(path) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())


NewClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def gateway(
    server_urls: ServerUrls, clean: None, smsc: SmscSimulator
) -> AsyncIterator[Gateway]:
    settings = gateway_settings(smsc.port)
    provider = dataclasses.replace(settings.providers[0], prefixes=("+7",))
    settings = dataclasses.replace(
        settings, providers=(provider,), routing=route_table({}, (provider,))
    )
    async with serving(settings, server_urls) as gw:
        gw.submit.quoter = per_part(D("0.50"))
        yield gw


@pytest.fixture
async def new_client(gateway: Gateway, pool: aiopg.Pool) -> AsyncIterator[NewClient]:
    sessions: list[aiohttp.ClientSession] = []

    async def make(**terms: Any) -> Client:
        created = await client_store.create(
            pool, f"client-{len(sessions)}", default_sender="Shop", terms=Terms(**terms)
        )
        headers = {"Authorization": f"Bearer {created.api_key}"}
        base = f"http://127.0.0.1:{gateway.settings.http.port}"
        sessions.append(aiohttp.ClientSession(base, headers=headers))
        return Client(sessions[-1], created.client.id)

    yield make
    for session in sessions:
        await session.close()


async def ledger_total(pool: aiopg.Pool, client_id: int) -> Decimal:
    [(total,)] = await fetch(
        pool, "SELECT sum(amount) FROM ledger WHERE client_id = %s", (client_id,)
    )
    return Decimal(total)


async def test_402_when_funds_run_out_and_nothing_is_stored(
    new_client: NewClient, pool: aiopg.Pool
) -> None:
    client = await new_client(balance=D("1.00"))
    for n in range(2):
        status, _, _ = await client.send(to=RU, text=f"paid {n}")
        assert status == 202
    status, body, _ = await client.send(to=RU, text="one too many", client_ref="x")
    assert status == 402
    assert body["error"]["code"] == "insufficient_funds" and body["error"]["field"] == "balance"
    status, body = await client.batch({"to": RU, "text": "a"}, {"to": RU, "text": "b"})
    assert status == 402
    assert await count(pool, "SELECT count(*) FROM messages WHERE client_id = %s", client.id) == 2
    balance = await wait_for(functools.partial(_settled, client))  # both charged 0.35
    assert balance["billed"] is True and D(balance["balance"]) == D("0.30")
    assert D(balance["balance"]) == await ledger_total(pool, client.id)


async def _settled(client: Client) -> dict[str, Any] | None:
    balance = await client.get("/v1/balance")
    return balance if D(balance["held"]) == 0 else None


async def test_the_credit_limit_is_how_far_below_zero(new_client: NewClient) -> None:
    client = await new_client(balance=D("0.20"), credit_limit=D("0.40"))
    assert (await client.send(to=RU, text="on credit"))[0] == 202
    assert (await client.send(to=RU, text="too far"))[0] == 402


async def test_balances_after_submission_and_after_no_route(
    new_client: NewClient, pool: aiopg.Pool
) -> None:
    client = await new_client(balance=D("10"))
    status, body = await client.batch(
        {"to": RU, "text": "one"}, {"to": RU, "text": "two " * 60}, {"to": UK, "text": "nowhere"}
    )
    assert status == 202
    ids = [a["id"] for a in body["accepted"]]
    assert D((await client.get("/v1/balance"))["held"]) <= D("2.00")  # 1 + 2 + 1 parts × 0.50
    for mid in ids:
        await wait_for(functools.partial(_done, client, mid))
    ru, long_ru, uk = [await client.get(f"/v1/messages/{mid}") for mid in ids]
    assert (ru["price"], ru["price_hold"]) == ("0.350000", "0.500000")
    assert long_ru["parts"] == 2 and long_ru["price"] == "0.700000"
    assert uk["status"] == "failed" and uk["error_code"] == "no_route" and uk["price"] is None
    balance = await client.get("/v1/balance")
    assert D(balance["balance"]) == D("10") - D("1.05") and D(balance["held"]) == 0
    assert await ledger_total(pool, client.id) == D("8.95")


async def _done(client: Client, mid: str) -> bool:
    status = (await client.get(f"/v1/messages/{mid}"))["status"]
    return status in ("submitted", "delivered", "failed")


async def test_429_over_the_tps_with_retry_after(new_client: NewClient, pool: aiopg.Pool) -> None:
    client = await new_client(tps=3)
    status, _ = await client.batch(*({"to": RU, "text": f"burst {n}"} for n in range(3)))
    assert status == 202
    status, body, headers = await client.send(to=RU, text="over")
    assert status == 429 and headers["Retry-After"] == "1"
    assert body["error"]["code"] == "rate_limited"
    assert (body["error"]["limit"], body["error"]["value"]) == ("tps", 3)
    assert await count(pool, "SELECT count(*) FROM messages WHERE client_id = %s", client.id) == 3


async def test_429_over_the_daily_quota_until_midnight(
    new_client: NewClient, pool: aiopg.Pool
) -> None:
    client = await new_client(daily_quota=3)
    assert (await client.batch({"to": RU, "text": "a"}, {"to": RU, "text": "b"}))[0] == 202
    status, body = await client.batch({"to": RU, "text": "c"}, {"to": RU, "text": "d"})
    assert status == 429 and body["error"]["code"] == "daily_quota_exceeded"
    status, _, headers = await client.send(to=RU, text="c")
    assert status == 202  # the refused batch took nothing from the quota
    status, body, headers = await client.send(to=RU, text="d")
    assert status == 429 and 0 < int(headers["Retry-After"]) <= 86400
    balance = await client.get("/v1/balance")
    assert (balance["daily_quota"], balance["used_today"]) == (3, 3)
    assert balance["quota_resets_at"].endswith("T00:00:00+00:00")
    assert await count(pool, "SELECT count(*) FROM messages WHERE client_id = %s", client.id) == 3


async def test_a_request_refused_for_funds_takes_no_quota(new_client: NewClient) -> None:
    client = await new_client(balance=D("0.50"), daily_quota=10)
    status, _ = await client.batch({"to": RU, "text": "a"}, {"to": RU, "text": "b"})
    assert status == 402
    assert (await client.get("/v1/balance"))["used_today"] == 0


async def test_a_client_not_billed_sees_no_balance(new_client: NewClient) -> None:
    client = await new_client()
    assert (await client.send(to=RU, text="free"))[0] == 202
    balance = await client.get("/v1/balance")
    assert balance == balance | {"billed": False, "balance": None, "tps": None, "used_today": None}
