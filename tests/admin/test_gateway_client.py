"""gateway.client against a real gateway API (and a loopback stand-in for 503s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiopg
import pytest
from aiohttp import web

from gateway.adapters import client_store
from gateway.adapters.client_store import Terms
from gateway.client import (
    GatewayClient,
    GatewayUnavailable,
    Outgoing,
    RequestRefused,
    RetryPolicy,
    retry_delay,
)
from gateway.core.message import Priority
from gateway.embedded import ServerUrls, free_port
from loadtest.smsc import SmscSimulator
from tests.e2e.conftest import Api, count, gateway_settings, serving_api, smsc  # noqa: F401
from tests.loopback import listening

FAST = RetryPolicy(attempts=6, base_s=0.05, cap_s=3.0, budget_s=10.0)


@pytest.fixture
async def api(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    smsc: SmscSimulator,  # noqa: F811
) -> AsyncIterator[Api]:
    async with serving_api(gateway_settings(smsc.port), server_urls, pool) as found:
        yield found


def _base(api: Api) -> str:
    return f"http://127.0.0.1:{api.gateway.settings.http.port}"


@pytest.fixture
async def client(api: Api) -> AsyncIterator[GatewayClient]:
    async with GatewayClient.open(_base(api), api.client.api_key, FAST) as found:
        yield found


def _bulk(n: int, ref: str = "r") -> list[Outgoing]:
    return [
        Outgoing(f"+7900{i:07d}", "Распродажа", "Shop", f"{ref}{i}", "bulk", 3600) for i in range(n)
    ]


async def test_a_batch_comes_back_per_message(client: GatewayClient, api: Api) -> None:
    batch = _bulk(3)
    batch[1] = Outgoing("12", "x", "Shop", "bad", "bulk")
    result = await client.send_batch(batch)
    assert [s.index for s in result.sent] == [0, 2]
    assert all(s.message_id > 0 and s.parts == 1 and not s.duplicate for s in result.sent)
    [bad] = result.rejected
    assert (bad.index, bad.field) == (1, "messages[1].to")
    found = await api.get(str(result.sent[0].message_id))
    assert found["priority"] == Priority.BULK.value  # the GET shows the stored code


async def test_a_resent_batch_makes_no_duplicate(client: GatewayClient, api: Api) -> None:
    first = await client.send_batch(_bulk(5))
    again = await client.send_batch(_bulk(5))
    assert [s.message_id for s in again.sent] == [s.message_id for s in first.sent]
    assert all(s.duplicate for s in again.sent)
    assert await count(api.pool, "SELECT count(*) FROM messages") == 5


async def test_more_than_a_request_holds_is_split(client: GatewayClient, api: Api) -> None:
    result = await client.send_batch(_bulk(1203))
    assert [s.index for s in result.sent] == list(range(1203))
    assert len({s.message_id for s in result.sent}) == 1203


async def test_every_message_refused_is_not_an_error(client: GatewayClient) -> None:
    result = await client.send_batch([Outgoing("12", "x", "Shop")])
    assert not result.sent and result.rejected[0].field == "messages[0].to"


async def test_a_bad_key_raises_naming_the_field(api: Api) -> None:
    async with GatewayClient.open(_base(api), "sk_nope", FAST) as bad:
        with pytest.raises(RequestRefused) as caught:
            await bad.send_batch(_bulk(1))
    assert (caught.value.status, caught.value.field) == (401, "api_key")


async def test_a_sender_not_allowed_is_a_rejection(client: GatewayClient) -> None:
    result = await client.send_batch([Outgoing("+79001234567", "x", "a" * 12)])
    assert result.rejected[0].field == "messages[0].from"


async def test_rate_limited_batches_wait_and_go_through(api: Api, pool: aiopg.Pool) -> None:
    limited = await client_store.create(pool, "slow", default_sender="Shop", terms=Terms(tps=20))
    async with GatewayClient.open(_base(api), limited.api_key, FAST) as slow:
        for k in range(3):  # 60 messages at 20/s: the second and third wait out a 429
            result = await slow.send_batch(_bulk(20, f"k{k}-"))
            assert len(result.sent) == 20


async def test_a_daily_quota_gives_up_at_once(api: Api, pool: aiopg.Pool) -> None:
    capped = await client_store.create(
        pool, "capped", default_sender="Shop", terms=Terms(daily_quota=3)
    )
    async with GatewayClient.open(_base(api), capped.api_key, FAST) as client:
        with pytest.raises(GatewayUnavailable) as caught:
            await client.send_batch(_bulk(5))
    assert (caught.value.status, caught.value.code) == (429, "daily_quota_exceeded")


async def test_503_is_retried_after_retry_after() -> None:
    answers = [503, 503, 202]
    seen: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(len((await request.json())["messages"]))
        status = answers.pop(0)
        if status == 503:
            return web.json_response({"error": {"code": "overloaded"}}, status=503,
                                     headers={"Retry-After": "0"})  # fmt: skip
        accepted = [{"index": 0, "id": "77", "parts": 1, "duplicate": False}]
        return web.json_response({"accepted": accepted, "rejected": []}, status=202)

    app = web.Application()
    app.router.add_post("/v1/messages/batch", handle)
    async with (
        listening(app) as port,
        GatewayClient.open(f"http://127.0.0.1:{port}", "k", FAST) as client,
    ):
        result = await client.send_batch(_bulk(1))
    assert [s.message_id for s in result.sent] == [77] and seen == [1, 1, 1]


async def test_a_gateway_that_is_down_gives_up_within_the_budget() -> None:
    policy = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05, budget_s=1.0)
    async with GatewayClient.open(f"http://127.0.0.1:{free_port()}", "k", policy) as client:
        with pytest.raises(GatewayUnavailable):
            await client.send_batch(_bulk(1))


def test_retry_delay_is_bounded() -> None:
    policy = RetryPolicy(attempts=4, base_s=1.0, cap_s=5.0, budget_s=8.0)
    assert retry_delay(policy, 0, 2.0, 0.0) == 2.0  # Retry-After beats a shorter backoff
    assert retry_delay(policy, 0, 60.0, 0.0) is None  # come back in a minute: give up
    assert retry_delay(policy, 3, None, 0.0) is None  # out of tries
    assert retry_delay(policy, 1, 5.0, 4.0) is None  # out of budget
    delays = [retry_delay(policy, a, None, 0.0) for a in range(3)]
    assert all(d is not None and 0 < d <= 5.0 for d in delays)


def test_outgoing_leaves_out_what_is_unset() -> None:
    assert Outgoing("+79001234567", "hi").to_json() == {
        "to": "+79001234567",
        "text": "hi",
        "priority": "transactional",
    }
