"""``/metrics`` of a real multi-process gateway: every scrape, whichever child answers it,
shows the whole deployment's counts; no label holds a number or a text; the dashboard and
the alert rules name only metrics that the scrape holds.

``smsgw run --procs 2`` children share the HTTP port (SO_REUSEPORT), so successive scrapes
land on either child; the counts are summed in Redis (gateway/metrics/recorder.py).
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
from prometheus_client.parser import text_string_to_metric_families

from gateway.adapters import client_store, pool_state
from gateway.core.masking import find_phones
from gateway.embedded import ServerUrls, free_port
from loadtest.processes import Child, spawn, wait_for_http
from loadtest.smsc import SmscSimulator
from smsgw.demo import demo_config
from tests.e2e.conftest import wait_for
from tests.e2e.test_durability import settle
from tests.logscan import CANARY, register_text
from tests.unit.test_dashboard import all_exprs, exported_names, names_in

MESSAGES = 12
RESULTS = ("matched", "early")
TEXT = f"Ваш заказ {CANARY} собран"
NUMBERS = [f"+7921555{n:04d}" for n in range(MESSAGES)]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def two_processes(
    server_urls: ServerUrls, clean: None, redis: aioredis.Redis, smsc: SmscSimulator
) -> AsyncIterator[str]:
    work = Path(tempfile.mkdtemp(prefix="sgm", dir="/tmp"))
    port = free_port()
    config = work / "gw.toml"
    config.write_text(demo_config(smsc.port, port, 50))
    env = {"DATABASE_URL": server_urls.database_url, "REDIS_URL": server_urls.redis_url}
    argv = ["-m", "smsgw.cli", "--config", str(config), "run", "--procs", "2"]
    gateway = spawn("gateway-metrics", argv, work, env)
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_for_http, gateway, f"{base}/v1/ready")
        await wait_for(lambda: _both_bound(redis), within=60)
        yield base
    finally:
        await _stop(gateway)


async def _stop(gateway: Child) -> None:
    code = await asyncio.to_thread(gateway.stop, 30.0)
    assert code == 0, gateway.log_path.read_text()[-3000:]


async def _both_bound(redis: aioredis.Redis) -> bool:
    processes = (await pool_state.read(redis, "smsgw")).get("sim", {}).get("processes", [])
    return sum(1 for p in processes if p["binds_up"] > 0) == 2


@pytest.mark.timeout(180)
async def test_every_scrape_counts_the_whole_deployment(
    two_processes: str, pool: aiopg.Pool
) -> None:
    created = await client_store.create(pool, "metrics-test")
    headers = {"Authorization": f"Bearer {created.api_key}"}
    register_text(TEXT)
    connector = aiohttp.TCPConnector(force_close=True)  # a connection each: either child
    async with aiohttp.ClientSession(two_processes, headers=headers, connector=connector) as http:
        ids = {await _send(http, number) for number in NUMBERS}
        async with http.post("/v1/messages", json={"to": NUMBERS[0]}) as response:
            assert response.status == 422  # no text: counted as an API error
        await settle(pool, ids, 60)
        scrape = await wait_for(lambda: _settled_scrape(http), within=20)
        for _ in range(6):  # either child may answer: each answers for both
            assert _key_counts(_samples(await _scrape(http))) == _key_counts(_samples(scrape))
    samples = _samples(scrape)
    assert samples[("smsgw_messages_total", (("provider", "sim"), ("status", "submitted")))] == 12
    assert samples[("smsgw_cost_total", (("provider", "sim"),))] == pytest.approx(12 * 0.35)
    assert samples[("smsgw_submit_latency_seconds_count", (("provider", "sim"),))] == 12
    delivered = (("provider", "sim"), ("status", "delivered"))
    assert samples[("smsgw_receipt_latency_seconds_count", delivered)] == 12
    assert samples[("smsgw_queue_latency_seconds_count", (("provider", "sim"),))] == 12
    bad = [v for (name, labels), v in samples.items() if name == "smsgw_api_errors_total"]
    assert sum(bad) >= 1
    receipts = {r: samples.get(("smsgw_receipts_total", (("result", r),)), 0) for r in RESULTS}
    assert receipts["matched"] + receipts["early"] == 12  # early: before the submit response
    for stream in ("otp", "transactional", "bulk"):
        assert samples[("smsgw_queue_depth", (("stream", stream),))] == 0
    assert samples[("smsgw_webhook_backlog", ())] == 0
    assert samples[("smsgw_provider_binds_up", (("provider", "sim"),))] == 2
    _assert_nothing_personal(scrape)
    used = names_in(all_exprs())
    assert used <= exported_names(scrape), used - exported_names(scrape)


async def _send(http: aiohttp.ClientSession, number: str) -> str:
    async with http.post(
        "/v1/messages", json={"to": number, "from": "Shop", "text": TEXT}
    ) as response:
        assert response.status == 202, await response.text()
        return str((await response.json())["id"])


async def _scrape(http: aiohttp.ClientSession) -> str:
    async with http.get("/metrics") as response:
        assert response.status == 200
        return await response.text()


async def _settled_scrape(http: aiohttp.ClientSession) -> str | None:
    """A scrape once the last flush (at most a second after the last count) is in."""
    scrape = await _scrape(http)
    counts = _key_counts(_samples(scrape))
    return scrape if counts == (MESSAGES, MESSAGES, MESSAGES) else None


def _key_counts(samples: Samples) -> tuple[float, ...]:
    accepted = samples.get(("smsgw_messages_accepted_total", (("priority", "transactional"),)))
    delivered = (("provider", "sim"), ("status", "delivered"))
    latency = samples.get(("smsgw_receipt_latency_seconds_count", delivered))
    return (accepted or 0, samples.get(("smsgw_messages_total", delivered), 0), latency or 0)


def _samples(scrape: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scrape)
        for s in family.samples
    }


def _assert_nothing_personal(scrape: str) -> None:
    assert next(find_phones(scrape), None) is None
    assert CANARY not in scrape and "заказ" not in scrape
    assert not any(number[2:] in scrape for number in NUMBERS)
