"""Gauges read at scrape time from the shared servers: the same answer from any process.

Queue depth and the oldest entry's age per priority stream (entries are deleted when
acked, so the length is what waits or is in flight), the webhook outbox backlog, and
campaign progress, which the admin sets while a campaign runs and clears when it ends
(so the ``campaign`` label names running campaigns only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import aiopg
import redis.asyncio as aioredis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.adapters.pg import fetch

BACKLOG_SQL = """
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)
FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL
"""
# How far behind now the sweeper's walk is (gateway/services/sweeper.py): about a second
# normally; it grows while a gateway transaction stays open, or while no sweeper runs.
SWEEP_LAG_SQL = "SELECT EXTRACT(EPOCH FROM now() - at) FROM sweep_cursor"
GAUGE_NAMES = (
    "smsgw_queue_depth",
    "smsgw_queue_oldest_age_seconds",
    "smsgw_webhook_backlog",
    "smsgw_webhook_oldest_age_seconds",
    "smsgw_campaign_messages",
    "smsgw_sweeper_lag_seconds",
)


@dataclass(frozen=True)
class Stream:
    depth: int
    oldest_age_s: float


@dataclass(frozen=True)
class Readings:
    streams: Mapping[str, Stream]
    webhook_backlog: int
    webhook_oldest_s: float
    campaigns: Mapping[tuple[str, str], float]
    sweep_lag_s: float = 0.0


async def read_streams(
    redis: aioredis.Redis, streams: Mapping[str, Sequence[str]]
) -> dict[str, Stream]:
    """``streams``: label → its keys (one per queue shard). One pipeline: XLEN and the
    first entry of each; a label's depth is the sum, its age the oldest shard's."""
    pipe = redis.pipeline(transaction=False)
    for keys in streams.values():
        for stream_key in keys:
            pipe.xlen(stream_key)
            pipe.xrange(stream_key, count=1)
    replies = iter(await pipe.execute())
    now_ms = time.time() * 1000
    found = {}
    for label, keys in streams.items():
        pairs = [(int(next(replies)), _age_s(next(replies), now_ms)) for _ in keys]
        found[label] = Stream(sum(d for d, _ in pairs), max((a for _, a in pairs), default=0.0))
    return found


def _age_s(first: list[tuple[bytes, object]], now_ms: float) -> float:
    if not first:
        return 0.0
    entry_ms = int(first[0][0].split(b"-", 1)[0])
    return max(0.0, (now_ms - entry_ms) / 1000)


async def read_backlog(pool: aiopg.Pool) -> tuple[int, float]:
    count, oldest = (await fetch(pool, BACKLOG_SQL))[0]
    return int(count), float(oldest)


async def read_sweep_lag(pool: aiopg.Pool) -> float:
    rows = await fetch(pool, SWEEP_LAG_SQL)
    return max(0.0, float(rows[0][0])) if rows else 0.0


# --- campaign progress: set by the admin ----------------------------------------------------


def campaigns_key(prefix: str) -> str:
    return f"{prefix}:{{metrics}}:campaigns"


async def set_campaign(
    redis: aioredis.Redis, prefix: str, campaign: str, counts: Mapping[str, int]
) -> None:
    """A running campaign's messages by status (e.g. queued, submitted, delivered, failed)."""
    mapping = {json.dumps([campaign, status]): n for status, n in counts.items()}
    if mapping:
        await redis.hset(campaigns_key(prefix), mapping=mapping)  # type: ignore[arg-type]


async def clear_campaign(redis: aioredis.Redis, prefix: str, campaign: str) -> None:
    """A finished or cancelled campaign leaves the gauge (its label must not linger)."""
    fields = [f for f in await redis.hkeys(campaigns_key(prefix)) if json.loads(f)[0] == campaign]
    if fields:
        await redis.hdel(campaigns_key(prefix), *fields)


async def read_campaigns(redis: aioredis.Redis, prefix: str) -> dict[tuple[str, str], float]:
    raw = await redis.hgetall(campaigns_key(prefix))
    return {_pair(f): float(v) for f, v in raw.items()}


def _pair(field: bytes | str) -> tuple[str, str]:
    campaign, status = json.loads(field)
    return str(campaign), str(status)


class GaugesCollector(Collector):
    def __init__(self, readings: Readings) -> None:
        self._r = readings

    def collect(self) -> Iterator[Metric]:
        yield from self._queue()
        backlog = GaugeMetricFamily(
            "smsgw_webhook_backlog", "status callbacks not yet delivered (nor given up)"
        )
        backlog.add_metric([], float(self._r.webhook_backlog))
        oldest = GaugeMetricFamily(
            "smsgw_webhook_oldest_age_seconds", "age of the oldest undelivered status callback"
        )
        oldest.add_metric([], self._r.webhook_oldest_s)
        lag = GaugeMetricFamily(
            "smsgw_sweeper_lag_seconds", "how far behind now the sweeper's walk is"
        )
        lag.add_metric([], self._r.sweep_lag_s)
        campaigns = GaugeMetricFamily(
            "smsgw_campaign_messages",
            "a running campaign's messages by status",
            labels=["campaign", "status"],
        )
        for (campaign, status), value in sorted(self._r.campaigns.items()):
            campaigns.add_metric([campaign, status], value)
        yield from (backlog, oldest, lag, campaigns)

    def _queue(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "smsgw_queue_depth", "queue entries waiting or in flight", labels=["stream"]
        )
        age = GaugeMetricFamily(
            "smsgw_queue_oldest_age_seconds", "age of the oldest queue entry", labels=["stream"]
        )
        for label, stream in sorted(self._r.streams.items()):
            depth.add_metric([label], float(stream.depth))
            age.add_metric([label], stream.oldest_age_s)
        yield depth
        yield age
