"""Real servers for every test that needs one: PostgreSQL, Redis, the SMSC simulator.

With DATABASE_URL / REDIS_URL set the tests use those servers (and TRUNCATE / FLUSHDB
them: point them at test instances only); otherwise one embedded PostgreSQL and Redis
are started for the session under a short /tmp directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiopg
import pytest
import redis.asyncio as aioredis

from gateway.adapters import pg
from gateway.embedded import ServerUrls, servers

pytest_plugins = ["tests.logscan"]  # fails the run if any log line holds a number or a text

TABLES = (
    "messages, message_parts, early_receipts, webhook_outbox, api_keys, clients, "
    "inbound_parts, inbound_messages, opt_outs, ledger, otp_challenges, otp_alerts, "
    "client_refs, daily_stats, opt_out_hashes, audit_log, disabled_providers"
)


@pytest.fixture(scope="session")
def server_urls() -> Iterator[ServerUrls]:
    data_dir = Path(tempfile.mkdtemp(prefix="sgt", dir="/tmp"))
    try:
        with servers(data_dir, os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")) as urls:
            yield urls
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def pool(server_urls: ServerUrls) -> AsyncIterator[aiopg.Pool]:
    async with pg.open_pool(server_urls.database_url, 10) as pool:
        await pg.migrate(pool)
        yield pool


@pytest.fixture(scope="session")
async def redis(server_urls: ServerUrls) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(server_urls.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def clean(pool: aiopg.Pool, redis: aioredis.Redis) -> None:
    """Empty tables and queue before a test (not after: a failure leaves evidence)."""
    await pg.execute(pool, f"TRUNCATE {TABLES} RESTART IDENTITY")
    # The routing override is one row; its version only grows (processes poll it).
    await pg.execute(pool, "UPDATE routing_admin SET document = NULL, version = version + 1")
    await redis.flushdb()
