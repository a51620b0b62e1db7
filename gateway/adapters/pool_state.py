"""Live provider pool state shared through Redis, so that any process can report it.

Each dispatch process writes its providers' snapshots (binds up, in flight, windows,
counters, the TPS it used over the last second) once a second into one hash field of
its own, stamped with the time. A reader (the API's ``/v1/providers``, the metrics
endpoint) sums the fields that are fresh and deletes those of processes that stopped
writing: a dead dispatcher drops out of the totals within ``STALE_S``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis

from providers.base import ProviderSnapshot

STALE_S = 5.0
_SUMMED = ("binds_up", "binds_total", "in_flight", "window", "window_max")
_COUNTERS = ("submitted", "throttled", "errors", "tps_used", "malformed_pdus")


def key(prefix: str) -> str:
    return f"{prefix}:{{pool}}:state"


def encode(snapshots: Iterable[ProviderSnapshot], extra: Mapping[str, Mapping[str, Any]]) -> str:
    """One process's state; ``extra`` adds per provider ``tps_used`` and breaker ``gate``."""
    providers = [{**asdict(s), **extra.get(s.name, {})} for s in snapshots]
    return json.dumps({"at": time.time(), "providers": providers})


async def publish(redis: aioredis.Redis, prefix: str, process: str, state: str) -> None:
    await redis.hset(key(prefix), process, state)


async def read(redis: aioredis.Redis, prefix: str) -> dict[str, dict[str, Any]]:
    """Per provider: the sums over live processes, and each process's own snapshot."""
    raw = await redis.hgetall(key(prefix))
    now = time.time()
    live: list[tuple[str, dict[str, Any]]] = []
    stale: list[tuple[str, dict[str, Any]]] = []
    for process, value in raw.items():
        state = json.loads(value)
        name = process.decode() if isinstance(process, bytes) else process
        (live if now - state["at"] <= STALE_S else stale).append((name, state))
    if stale:
        await redis.hdel(key(prefix), *(process for process, _ in stale))
    return merge(live)


def merge(states: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for process, state in states:
        for item in state["providers"]:
            total = totals.setdefault(item["name"], _empty(item))
            for field in (*_SUMMED, *_COUNTERS):
                total[field] += item.get(field, 0)
            total["ready"] = total["ready"] or item["ready"]
            if item.get("gate", "closed") != "closed":
                total["gate"] = item["gate"]  # any process's open breaker shows
            total["processes"].append({"process": process, **item})
    return totals


def _empty(item: Mapping[str, Any]) -> dict[str, Any]:
    empty: dict[str, Any] = {field: 0 for field in (*_SUMMED, *_COUNTERS)}
    head = {"name": item["name"], "kind": item["kind"], "ready": False, "gate": "closed"}
    return {**head, **empty, "processes": []}
