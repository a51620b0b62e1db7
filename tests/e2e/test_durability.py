"""Accepted means durable: SIGKILL of the gateway, FLUSHALL of Redis, mid-load.

Invariants 1–3 of shared/DESIGN.md: every message answered 2xx reaches a final state;
a crash duplicates at most the in-flight window of the process that died.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import client_store, pg
from gateway.embedded import ServerUrls, free_port
from loadtest.loadgen import messages
from loadtest.processes import Child, spawn, wait_for_http
from loadtest.smsc import SmscSimulator
from smsgw.demo import demo_config
from tests.e2e.conftest import Api, count, wait_for

WINDOW = 50
DUPLICATES_SQL = """
SELECT count(*) FROM (SELECT message_id FROM message_parts GROUP BY message_id
                      HAVING count(*) > (SELECT parts FROM messages WHERE id = message_id)) d
"""


class Sender:
    """Posts batches until told to stop; remembers the ids the gateway answered 2xx for."""

    def __init__(self, base: str, api_key: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.accepted: set[str] = set()
        self.failed_requests = 0
        self._source = messages(1_000_000, seed=7)

    async def run(self, total: int, batch: int = 100) -> None:
        async with aiohttp.ClientSession(self.base, headers=self.headers) as http:
            while len(self.accepted) < total:
                chunk = [next(self._source) for _ in range(batch)]
                try:
                    async with http.post("/v1/messages/batch", json={"messages": chunk}) as r:
                        if r.status == 202:
                            self.accepted |= {a["id"] for a in (await r.json())["accepted"]}
                except (aiohttp.ClientError, OSError):
                    self.failed_requests += 1  # the gateway died under us: not accepted
                    await asyncio.sleep(0.05)


async def describe(pool: aiopg.Pool) -> str:
    """What the store holds, for a failing assertion's message."""
    rows = await pg.fetch(
        pool,
        "SELECT state, in_queue, due_at < now(), count(*), "
        "(SELECT count(*) FROM early_receipts) FROM messages GROUP BY 1, 2, 3",
    )
    stuck = await pg.fetch(
        pool,
        "SELECT m.id, m.parts, m.attempts, m.accepted_at, m.submitted_at, p.provider_key, p.status,"
        " p.submitted_at FROM messages m LEFT JOIN message_parts p ON p.message_id = m.id"
        " WHERE m.state = 30 ORDER BY m.id LIMIT 6",
    )
    early = await pg.fetch(pool, "SELECT provider_key, received_at FROM early_receipts LIMIT 6")
    return f"state, in_queue, due, count, early: {rows}\nstuck: {stuck}\nearly: {early}"


async def settle(pool: aiopg.Pool, ids: set[str], within: float) -> None:
    try:
        await wait_for(lambda: all_final(pool, ids), within=within)
    except TimeoutError:
        raise AssertionError(await describe(pool)) from None


async def all_final(pool: aiopg.Pool, ids: set[str]) -> bool:
    sql = "SELECT count(*) FROM messages WHERE id = ANY(%s::bigint[]) AND state >= 40"
    return await count(pool, sql, [int(i) for i in ids]) == len(ids)


@pytest.fixture
async def gateway_process(
    server_urls: ServerUrls, clean: None, smsc: SmscSimulator
) -> AsyncIterator[tuple[Path, dict[str, str], int]]:
    work = Path(tempfile.mkdtemp(prefix="sgk", dir="/tmp"))
    port = free_port()
    config = work / "gw.toml"
    config.write_text(
        demo_config(smsc.port, port, WINDOW)
        + "[dispatch]\nlease_s = 3.0\nsweep_interval_s = 0.5\nenqueue_grace_s = 2.0\n"
    )
    env = {"DATABASE_URL": server_urls.database_url, "REDIS_URL": server_urls.redis_url}
    yield config, env, port


def start_gateway(config: Path, env: dict[str, str], port: int) -> Child:
    child = spawn(
        "gateway", ["-m", "smsgw.cli", "--config", str(config), "run"], config.parent, env
    )
    wait_for_http(child, f"http://127.0.0.1:{port}/v1/ready")
    return child


@pytest.mark.timeout(240)
async def test_sigkill_mid_load_loses_nothing(
    gateway_process: tuple[Path, dict[str, str], int], pool: aiopg.Pool, smsc: SmscSimulator
) -> None:
    config, env, port = gateway_process
    smsc.update(resp_delay=0.02)  # keep submissions in flight when the kill lands
    created = await client_store.create(pool, "kill-test")
    sender = Sender(f"http://127.0.0.1:{port}", created.api_key)
    gateway = await asyncio.to_thread(start_gateway, config, env, port)
    try:
        load = asyncio.create_task(sender.run(6000))
        await wait_for(lambda: _at_least(sender, 2000), within=60)
        gateway.kill()  # SIGKILL: no drain, no unbind
        gateway = await asyncio.to_thread(start_gateway, config, env, port)
        await asyncio.wait_for(load, 120)
        await settle(pool, sender.accepted, 120)
        # Rows committed as the kill landed, their requests unanswered (and sent again),
        # are messages too: they may still be on their way, and must arrive all the same.
        await wait_for(lambda: _none_open(pool), within=60)
    finally:
        gateway.stop()
    assert await count(pool, DUPLICATES_SQL) <= WINDOW
    assert await count(pool, "SELECT count(*) FROM messages WHERE state <> 41") == 0


async def _none_open(pool: aiopg.Pool) -> bool:
    return await count(pool, "SELECT count(*) FROM messages WHERE state < 40") == 0


async def _at_least(sender: Sender, n: int) -> bool:
    return len(sender.accepted) >= n


@pytest.mark.timeout(180)
async def test_flushall_mid_load_rebuilds_the_queue(
    api: Api, pool: aiopg.Pool, redis: aioredis.Redis, smsc: SmscSimulator
) -> None:
    smsc.update(resp_delay=0.1)  # 50 in flight / 0.1 s: a backlog builds in the streams
    sender = Sender(str(api.http._base_url), api.client.api_key)
    await sender.run(3000, batch=500)
    backlog = sum((await api.gateway.queue.lengths()).values())
    assert backlog > 500, "the test needs messages waiting in Redis when it flushes"
    await redis.flushall()
    smsc.update(resp_delay=0.0)
    await settle(pool, sender.accepted, 120)
    assert api.gateway.sweeper.rebuilds >= 1
    assert await count(pool, DUPLICATES_SQL) <= WINDOW


@pytest.mark.timeout(120)
async def test_sigterm_drains_and_unbinds(
    gateway_process: tuple[Path, dict[str, str], int], pool: aiopg.Pool, smsc: SmscSimulator
) -> None:
    config, env, port = gateway_process
    created = await client_store.create(pool, "term-test")
    sender = Sender(f"http://127.0.0.1:{port}", created.api_key)
    gateway = await asyncio.to_thread(start_gateway, config, env, port)
    await sender.run(500)
    code = await asyncio.to_thread(gateway.stop)  # SIGTERM, then wait
    assert code == 0
    assert smsc.stats.unbinds >= 1  # a clean unbind, not a dropped socket
    gateway = await asyncio.to_thread(start_gateway, config, env, port)
    try:
        await settle(pool, sender.accepted, 60)
    finally:
        gateway.stop()
