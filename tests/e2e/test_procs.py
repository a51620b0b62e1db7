"""``smsgw run --procs 3``: three gateway processes against one simulator.

Invariants 3 and 5 of shared/DESIGN.md with several processes: every accepted message
is submitted exactly once (no process crashed, so no duplicate at all), all of them are
delivered, and the provider's TPS limit holds across the processes, second by second.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import client_store, pool_state
from gateway.embedded import ServerUrls, free_port
from loadtest.processes import spawn, wait_for_http
from loadtest.smsc import SmscSimulator
from smsgw.demo import demo_config
from tests.e2e.conftest import count, wait_for
from tests.e2e.test_durability import Sender, settle

TPS = 150
MESSAGES = 1500


@pytest.mark.timeout(180)
async def test_three_processes_share_the_tps_limit(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    redis: aioredis.Redis,
    smsc: SmscSimulator,
) -> None:
    work = Path(tempfile.mkdtemp(prefix="sgp", dir="/tmp"))
    port = free_port()
    config = work / "gw.toml"
    config.write_text(demo_config(smsc.port, port, 50) + f"tps = {TPS}\nbinds = 1\n")
    env = {"DATABASE_URL": server_urls.database_url, "REDIS_URL": server_urls.redis_url}
    argv = ["-m", "smsgw.cli", "--config", str(config), "run", "--procs", "3"]
    gateway = spawn("gateway", argv, work, env)
    try:
        await asyncio.to_thread(wait_for_http, gateway, f"http://127.0.0.1:{port}/v1/ready")
        # On a busy machine one child may bind after a short load is already done, which
        # would prove nothing about sharing: wait until all three publish bound pools.
        await wait_for(lambda: _all_bound(redis), within=60)
        created = await client_store.create(pool, "procs-test")
        sender = Sender(f"http://127.0.0.1:{port}", created.api_key)
        await sender.run(MESSAGES, batch=100)
        await settle(pool, sender.accepted, 120)
        consumers = await _consumers(redis)
    finally:
        code = await asyncio.to_thread(gateway.stop, 30.0)
    assert code == 0, gateway.log_path.read_text()[-3000:]
    assert len(consumers) == 3  # three dispatchers took work
    parts = await count(pool, "SELECT sum(parts) FROM messages")
    assert smsc.stats.submits == parts  # every part of every message once: none lost or twice
    assert await count(pool, "SELECT count(*) FROM messages WHERE state <> 41") == 0
    busiest = max(smsc.stats.accepted_per_second.values())
    assert busiest <= TPS * 1.1, smsc.stats.accepted_per_second


async def _all_bound(redis: aioredis.Redis) -> bool:
    states = await pool_state.read(redis, "smsgw")
    processes = states.get("sim", {}).get("processes", [])
    return sum(1 for p in processes if p["binds_up"] > 0) == 3


async def _consumers(redis: aioredis.Redis) -> set[str]:
    names: set[str] = set()
    for priority in ("otp", "transactional", "bulk"):
        found = await redis.xinfo_consumers(f"smsgw:{{q}}:{priority}", "dispatch")
        names |= {c["name"] for c in found}
    return names
