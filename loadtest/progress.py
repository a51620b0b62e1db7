"""The benchmark's progress line from the gateway's own counters, not from the rows.

Counting the run's rows once a second read every row each time: at a million messages
that took most of a core of the PostgreSQL being measured. The gateway already sums its
counters over every process in one Redis hash (``gateway/metrics/recorder.py``), so the
runner reads that (one HGETALL) and asks PostgreSQL only to confirm the end. Pure but
for ``read``: counters in, counts out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.core.lifecycle import State
from gateway.metrics import recorder

_FINAL = frozenset(s.label for s in State if s.is_final)
_MAIN = ("transactional", "bulk")


@dataclass(frozen=True)
class Counts:
    total: int = 0
    submitted: int = 0
    final: int = 0
    main_submitted: int = 0


def from_totals(totals: Mapping[tuple[str, str, tuple[str, ...]], float]) -> Counts:
    """Accepted, submitted (or past it) and final messages, as the counters tell.

    A message counts once per state it reached; one that never reached a provider
    (failed, rejected) has no ``submitted``, so submitted is at least the final ones.
    ``main_submitted`` leaves the OTPs out as if every OTP accepted were submitted: a
    lower bound (some are always in flight), for the progress line only."""
    accepted: dict[str, float] = {}
    states: dict[str, float] = {}
    for (name, part, labels), value in totals.items():
        if part:
            continue
        if name == "smsgw_messages_accepted_total" and labels:
            accepted[labels[0]] = accepted.get(labels[0], 0.0) + value
        elif name == "smsgw_messages_total" and labels:
            states[labels[0]] = states.get(labels[0], 0.0) + value
    final = sum(v for label, v in states.items() if label in _FINAL)
    submitted = max(states.get("submitted", 0.0), final)
    main_submitted = submitted - accepted.get("otp", 0.0)
    return Counts(int(sum(accepted.values())), int(submitted), int(final), int(main_submitted))


async def read(redis: aioredis.Redis, prefix: str) -> Counts:
    return from_totals(await recorder.read(redis, prefix))


class CounterProgress:
    """Counts since ``start``: a Redis given by URL may hold an earlier run's totals."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._base = Counts()

    async def start(self) -> None:
        self._base = await read(self._redis, self._prefix)

    async def counts(self) -> Counts:
        now, base = await read(self._redis, self._prefix), self._base
        return Counts(
            now.total - base.total,
            now.submitted - base.submitted,
            now.final - base.final,
            now.main_submitted - base.main_submitted,
        )

    async def close(self) -> None:
        await self._redis.aclose()
