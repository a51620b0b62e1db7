"""The maintenance task: day partitions ahead of time, aggregates, retention.

One run (every ``interval_s`` in the sweeper role, or ``smsgw retention --now``), under a
PostgreSQL advisory lock so that one process at a time does it:

1. make the partitions of today and the next ``ahead`` days;
2. roll yesterday up into ``daily_stats`` (a day is rolled up again, whole, before its
   partition is dropped: states still move after midnight);
3. drop the partitions wholly older than ``days`` (``plan``), after deleting the rows of
   ``client_refs``, ``message_parts`` and ``webhook_outbox`` that point into them;
4. scrub the older messages the drop could not take (the day straddling the limit);
5. delete inbound messages, waiting inbound parts, old webhooks and OTP challenges past
   their limit;
6. write one ``audit_log`` row with the counts.

Every step is idempotent: a run that dies half-way is finished by the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import aiopg

from gateway.adapters import retention_store as store
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.pg import fetch
from gateway.core.retention import RetentionSettings, plan, scrub_before
from gateway.metrics import families

log = logging.getLogger("gateway.retention")

_LOCK_ID = 0x5357_5254  # "SWRT"
FIRST_RUN_AFTER_S = 60.0
T = TypeVar("T")


async def _to_the_end(run: Coroutine[Any, Any, T]) -> T:
    """Finish a run even if the caller is cancelled (shutdown then waits for it): aiopg
    cancelled inside a transaction can strand its connection with the transaction open,
    and the advisory lock with it."""
    task = asyncio.ensure_future(run)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the caller is going away anyway
        raise


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: bool = False  # another process held the lock

    def add(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


class Retention:
    def __init__(self, settings: RetentionSettings, pool: aiopg.Pool) -> None:
        self._settings = settings
        self._pool = pool
        self._rolled: date | None = None  # the day on which yesterday was last rolled up

    async def run(self) -> None:
        """Every ``interval_s``, the first after at most a minute: the migration made the
        partitions of the coming week, and a gateway that is stopped at once is spared."""
        await asyncio.sleep(min(self._settings.interval_s, FIRST_RUN_AFTER_S))
        while True:
            raise_if_cancelling()
            try:
                await _to_the_end(self.run_once())
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("retention run failed: %r", exc)
            await asyncio.sleep(self._settings.interval_s)

    async def run_once(self, now: datetime | None = None, actor: str = "maintenance") -> Report:
        now = now or datetime.now(UTC)
        report = Report()
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_ID,))
            if not (await cur.fetchone())[0]:
                return Report(skipped=True)
            try:
                await self._steps(now, report)
            finally:
                await cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
        families.RETENTION_RUNS.inc()
        for kind, n in report.counts.items():
            families.RETENTION_ROWS.inc(kind, by=n)
        if report.dropped or any(report.counts.values()):
            await store.audit(self._pool, "retention", actor, report.counts)
            log.info("retention: dropped %s, counts %s", report.dropped, report.counts)
        return report

    async def _steps(self, now: datetime, report: Report) -> None:
        started = time.monotonic()
        today = now.date()
        decided = plan(today, await store.partitions(self._pool), self._settings)
        for day in decided.create:
            moved = await store.create_partition(self._pool, day)
            report.add("messages_moved_from_default", moved)
            report.created.append(day.isoformat())
        if self._rolled != today:  # once a day per process: a roll-up reads a whole day
            await store.rollup_day(self._pool, today - timedelta(days=1))
            self._rolled = today
        for day in decided.drop:
            for table, n in (await store.drop_partition(self._pool, day, self._batch)).items():
                report.add(f"{table}_deleted", n)
            report.dropped.append(day.isoformat())
        await self._scrub(now, report)
        log.debug("retention steps took %.1f s", time.monotonic() - started)

    @property
    def _batch(self) -> int:
        return self._settings.batch

    async def _scrub(self, now: datetime, report: Report) -> None:
        now_ms = int(now.timestamp() * 1000)
        below = scrub_before(now_ms, self._settings.days)
        if below is not None:
            scrubbed = await store.scrub_messages(self._pool, below, self._batch)
            report.add("messages_scrubbed", scrubbed)
            report.add("webhook_outbox_deleted", await self._old_webhooks(now))
            if await store.table_exists(self._pool, "otp_challenges"):
                report.add("otp_challenges_deleted", await self._old_otp(now))
        inbound_below = scrub_before(now_ms, self._settings.inbound_days)
        if inbound_below is not None:
            report.add("inbound_messages_deleted", await self._old_inbound(inbound_below))
            report.add("inbound_parts_deleted", await self._old_parts(now))

    def _cutoff(self, now: datetime, days: int) -> datetime:
        return now - timedelta(days=days)

    async def _old_webhooks(self, now: datetime) -> int:
        cutoff = self._cutoff(now, self._settings.days)
        return await store.delete_older(
            self._pool, "webhook_outbox", "id", "created_at < %s", (cutoff,), self._batch
        )

    async def _old_otp(self, now: datetime) -> int:
        cutoff = self._cutoff(now, self._settings.days)
        return await store.delete_older(
            self._pool, "otp_challenges", "id", "created_at < %s", (cutoff,), self._batch
        )

    async def _old_inbound(self, below_id: int) -> int:
        return await store.delete_older(
            self._pool, "inbound_messages", "id", "id < %s", (below_id,), self._batch
        )

    async def _old_parts(self, now: datetime) -> int:
        cutoff = self._cutoff(now, self._settings.inbound_days)
        return await store.delete_older(
            self._pool, "inbound_parts", "ctid", "stored_at < %s", (cutoff,), self._batch
        )


async def daily_stats(pool: aiopg.Pool, day: str) -> list[tuple[object, ...]]:
    """The aggregates of one day, as stored."""
    return await fetch(
        pool,
        "SELECT client_id, provider, priority, state, messages, parts, cost FROM daily_stats "
        "WHERE day = %s ORDER BY 1, 2, 3, 4",
        (day,),
    )
