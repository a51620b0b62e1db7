"""The shared totals in a real Redis: two processes' flushes add up, a failed flush keeps
its counts, and campaign gauges come and go with their campaigns."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway import metrics
from gateway.embedded import free_port
from gateway.metrics import families, gauges, recorder

PREFIX = "smsgw"


def _values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_flushes_from_two_processes_add_up(redis: aioredis.Redis, clean: None) -> None:
    recorder.take()
    families.MESSAGES_ACCEPTED.inc("otp", by=3)
    await recorder.flush(redis, PREFIX)  # one process
    families.MESSAGES_ACCEPTED.inc("otp", by=4)
    families.QUEUE_LATENCY.observe_many([0.02, 0.3], "sim")
    await recorder.flush(redis, PREFIX)  # another (the same hash, any process)
    text = metrics.render([metrics.TotalsCollector(await recorder.read(redis, PREFIX))]).decode()
    assert _values(text, "smsgw_messages_accepted_total") == {(("priority", "otp"),): 7}
    assert _values(text, "smsgw_queue_latency_seconds_count") == {(("provider", "sim"),): 2}


async def test_a_flush_that_fails_keeps_its_counts(redis: aioredis.Redis, clean: None) -> None:
    recorder.take()
    families.COST.inc("sim", by=0.35)
    gone = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        with pytest.raises((RedisConnectionError, OSError)):
            await recorder.flush(gone, PREFIX)
    finally:
        await gone.aclose()
    await recorder.flush(redis, PREFIX)
    totals = await recorder.read(redis, PREFIX)
    assert totals[("smsgw_cost_total", "", ("sim",))] == 0.35


async def test_campaign_gauges_name_running_campaigns_only(
    redis: aioredis.Redis, clean: None
) -> None:
    await metrics.set_campaign(redis, PREFIX, "41", {"queued": 900, "delivered": 100})
    await metrics.set_campaign(redis, PREFIX, "42", {"queued": 5})
    await metrics.set_campaign(redis, PREFIX, "41", {"queued": 800, "delivered": 200})
    await metrics.clear_campaign(redis, PREFIX, "42")
    readings = metrics.Readings({}, 0, 0.0, await gauges.read_campaigns(redis, PREFIX))
    text = metrics.render([metrics.GaugesCollector(readings)]).decode()
    assert _values(text, "smsgw_campaign_messages") == {
        (("campaign", "41"), ("status", "delivered")): 200,
        (("campaign", "41"), ("status", "queued")): 800,
    }
