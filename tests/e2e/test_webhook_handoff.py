"""Status callbacks handed from the receipt's commit to the sender in the same process:
out without a poll, exactly once, and not stranded by a stop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import aiopg
import pytest
from aiohttp import web

from gateway.app import Gateway
from gateway.embedded import ServerUrls
from gateway.settings import Settings
from loadtest.smsc import SmscSimulator
from tests.e2e.conftest import Receiver, count, gateway_settings, serving_api, wait_for
from tests.loopback import listening

OUTBOX_ROW = "SELECT count(*) FROM webhook_outbox WHERE message_id = %s AND {}"


def without_poller(smsc: SmscSimulator, timeout_s: float = 10.0) -> Settings:
    """The poller's first round finds nothing and then sleeps for an hour."""
    settings = gateway_settings(smsc.port)
    hooks = dataclasses.replace(settings.webhooks, poll_interval_s=3600.0, timeout_s=timeout_s)
    return dataclasses.replace(settings, webhooks=hooks)


async def test_a_callback_goes_out_once_without_the_poller(
    server_urls: ServerUrls, clean: None, pool: aiopg.Pool, smsc: SmscSimulator, receiver: Receiver
) -> None:
    async with serving_api(without_poller(smsc), server_urls, pool) as api:
        _, body = await api.send(to="+79211234567", text="hook", callback_url=receiver.url)
        await wait_for(lambda: _calls(receiver, 1), within=10)
        recorded = OUTBOX_ROW.format("delivered_at IS NOT NULL AND attempts = 1")
        await wait_for(lambda: _counted(pool, recorded, int(body["id"])), within=5)
        await wait_for(lambda: _idle(api.gateway), within=5)  # nothing left to send again
    [payload] = receiver.payloads()
    assert payload["data"]["id"] == body["id"] and payload["data"]["status"] == "delivered"


class Stalling:
    """A receiver that holds every request until told to answer."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.answer = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.arrived.set()
        await self.answer.wait()
        return web.Response(status=204)


@pytest.fixture
async def stalling() -> AsyncIterator[tuple[Stalling, str]]:
    stall = Stalling()
    app = web.Application()
    app.router.add_post("/hook", stall.handle)
    async with listening(app) as port:
        yield stall, f"http://127.0.0.1:{port}/hook"
        stall.answer.set()


async def test_a_callback_in_flight_at_a_stop_is_sent_by_the_next_process(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    smsc: SmscSimulator,
    stalling: tuple[Stalling, str],
    receiver: Receiver,
) -> None:
    stall, url = stalling
    async with serving_api(without_poller(smsc, timeout_s=30.0), server_urls, pool) as api:
        _, body = await api.send(to="+79211234567", text="hook", callback_url=url)
        await asyncio.wait_for(stall.arrived.wait(), 10)
    mid = int(body["id"])  # stopped with the answer outstanding: released, not leased
    due = OUTBOX_ROW.format("delivered_at IS NULL AND next_at <= now()")
    assert await count(pool, due, mid) == 1
    await _point_at(pool, mid, receiver.url)
    async with serving_api(gateway_settings(smsc.port), server_urls, pool, client="second"):
        await wait_for(lambda: _calls(receiver, 1), within=10)
    assert receiver.payloads()[0]["data"]["id"] == body["id"]


async def _point_at(pool: aiopg.Pool, message_id: int, url: str) -> None:
    """The stalled receiver would hold the second process's attempt too."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "UPDATE webhook_outbox SET url = %s WHERE message_id = %s", (url, message_id)
        )


async def _idle(gateway: Gateway) -> bool:
    return gateway.webhooks.handoff.pending == 0


async def _calls(receiver: Receiver, n: int) -> bool:
    return len(receiver.calls) >= n


async def _counted(pool: aiopg.Pool, sql: str, message_id: int) -> bool:
    return await count(pool, sql, message_id) == 1
