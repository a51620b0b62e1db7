"""The dispatcher: queue entries → claimed messages → providers → recorded outcomes.

Theory of operation. A reader task pulls entries from the three priority streams
(only as many as the in-process channels have room for: that is the backpressure),
claims the messages in PostgreSQL in one statement (a lease until ``due_at``; a message
with an outcome, or leased elsewhere, is not returned and its entry is just acked),
and puts them into per-priority channels. Sender tasks take from the channels by
weighted round robin (OTP first, bulk never starved), route, submit and hand the
outcome to the ``OutcomeWriter``, which commits and only then acks. A reclaimer
takes over entries that a dead dispatcher read but never acked.

Redis is not the record: ``in_queue``/``due_at`` in PostgreSQL let the sweeper
(services/sweeper.py) put back whatever a lost queue or a crash dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import aiopg
from redis.exceptions import ResponseError

from gateway.adapters import message_store as store
from gateway.adapters.failures import TRANSIENT
from gateway.adapters.redis_queue import Entry, RedisQueue
from gateway.core.lifecycle import State
from gateway.core.message import Outbound, Priority
from gateway.core.receipts import AUTO, IdForms, part_key
from gateway.core.scheduling import GiveUp, WeightedPicker, after_temporary_failure
from gateway.services.outcomes import Done, OutcomeWriter
from gateway.services.throttle import Throttle
from gateway.settings import DispatchSettings
from providers.base import (
    Provider,
    ProviderPermanentError,
    ProviderTemporaryError,
    Submission,
    SubmitResult,
)
from routing.choose import Decision, Route, RouteRequest, RouteState, choose

log = logging.getLogger("gateway.dispatch")


@dataclass(frozen=True, slots=True)
class Job:
    message: Outbound
    entries: tuple[Entry, ...]
    claimed_at: float = 0.0  # loop time of the claim: the lease runs from here


class Channels:
    """Bounded per-priority channels with a weighted pick across them."""

    def __init__(self, capacity: int, weights: Sequence[int]) -> None:
        self.capacity = capacity
        self._lanes: dict[Priority, deque[Job]] = {p: deque() for p in Priority}
        self._picker = WeightedPicker(weights)
        self._has_work = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()

    def room(self) -> dict[Priority, int]:
        return {p: max(0, self.capacity - len(lane)) for p, lane in self._lanes.items()}

    def put(self, job: Job) -> None:
        self._lanes[job.message.priority].append(job)
        self._has_work.set()

    async def get(self) -> Job:
        while True:
            index = self._picker.pick([bool(self._lanes[p]) for p in Priority])
            if index is not None:
                job = self._lanes[Priority(index)].popleft()
                self._has_room.set()
                return job
            self._has_work.clear()
            await self._has_work.wait()

    async def wait_for_room(self) -> None:
        self._has_room.clear()
        if not any(self.room().values()):
            await self._has_room.wait()

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())


class Dispatcher:
    def __init__(
        self,
        settings: DispatchSettings,
        pool: aiopg.Pool,
        queue: RedisQueue,
        providers: Mapping[str, Provider],
        routes: Sequence[Route],
        outcomes: OutcomeWriter,
        id_forms: Mapping[str, IdForms],
        consumer: str,
        tps: Mapping[str, float] | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._queue = queue
        self._providers = providers
        self._routes = routes
        self._outcomes = outcomes
        self._id_forms = id_forms
        self._consumer = consumer
        self._throttles = {name: Throttle(rate) for name, rate in (tps or {}).items()}
        window = sum(max(p.capacity(), 1) for p in providers.values()) or 1
        self.senders = max(8, min(4000, window))
        self.channels = Channels(max(settings.read_batch, self.senders), settings.weights)
        self.in_flight = 0
        self._intake: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()

    async def run(self) -> None:
        await self._queue.ensure_groups()
        async with asyncio.TaskGroup() as tasks:
            self._intake = [
                tasks.create_task(self._read_loop()),
                tasks.create_task(self._reclaim_loop()),
            ]
            for _ in range(self.senders):
                tasks.create_task(self._send_loop())

    # --- reading --------------------------------------------------------------------
    async def _read_loop(self) -> None:
        while True:
            room = self.channels.room()
            if not any(room.values()):
                await self.channels.wait_for_room()
                continue
            try:
                entries = await self._read(room)
            except ResponseError as exc:  # NOGROUP: Redis lost its data; recreate
                log.warning("queue read failed (%s); recreating consumer groups", exc)
                await self._recreate_groups()
                continue
            except TRANSIENT as exc:
                log.warning("queue unreachable: %r", exc)
                await asyncio.sleep(1.0)
                continue
            if entries:
                await self._admit_or_leave(entries)

    async def _recreate_groups(self) -> None:
        try:
            await self._queue.ensure_groups()
        except TRANSIENT as exc:
            log.warning("could not recreate consumer groups: %r", exc)
            await asyncio.sleep(1.0)

    async def _admit_or_leave(self, entries: list[Entry]) -> None:
        """A database error must not stop dispatch: the entries stay pending and are
        reclaimed once idle (and a deadlock, rare with ordered locking, is retried)."""
        for attempt in range(5):
            try:
                await self._admit(entries)
                return
            except TRANSIENT as exc:
                log.warning("claiming %d entries failed (%r)", len(entries), exc)
                await asyncio.sleep(0.2 * (attempt + 1))

    async def _read(self, room: dict[Priority, int]) -> list[Entry]:
        counts = {p: min(n, self._settings.read_batch) for p, n in room.items()}
        entries = await self._queue.read(self._consumer, counts, None)
        return entries or await self._queue.wait(self._consumer, counts, 1000)

    async def _admit(self, entries: list[Entry]) -> None:
        by_id: dict[int, list[Entry]] = {}
        for entry in entries:
            by_id.setdefault(entry.message_id, []).append(entry)
        claimed_at = asyncio.get_running_loop().time()
        claimed = await store.claim(self._pool, list(by_id), self._settings.lease_s)
        now = datetime.now(UTC)
        for message in claimed:
            job = Job(message, tuple(by_id.pop(message.id)), claimed_at)
            if message.expires_at is not None and message.expires_at <= now:
                await self._finish(job, store.FinalUpdate(message.id, State.EXPIRED, "validity"))
            else:
                self.channels.put(job)
        leftovers = tuple(e for group in by_id.values() for e in group)
        if leftovers:  # done already, or leased by another dispatcher
            await self._outcomes.record(Done(leftovers, None))

    async def _reclaim_loop(self) -> None:
        idle_ms = int(self._settings.lease_s * 1000)
        while True:
            await asyncio.sleep(min(10.0, self._settings.lease_s / 2))
            try:
                entries = await self._queue.reclaim(self._consumer, idle_ms, 500)
            except TRANSIENT as exc:
                log.warning("reclaim failed: %r", exc)
                continue
            if entries:
                log.info("reclaimed %d entries from dead consumers", len(entries))
                await self._admit_or_leave(entries)

    # --- sending --------------------------------------------------------------------
    async def _send_loop(self) -> None:
        while True:
            job = await self.channels.get()
            self.in_flight += 1
            self._idle.clear()
            try:
                await self._send(job)
            finally:
                self.in_flight -= 1
                if not self.in_flight and not len(self.channels):
                    self._idle.set()

    async def drain(self, within: float) -> None:
        """Stop reading the queue and let what was claimed be sent, for at most ``within``
        seconds; what is left keeps its lease and goes again once the lease expires."""
        for task in self._intake:
            task.cancel()
        if self.in_flight or len(self.channels):
            try:
                async with asyncio.timeout(within):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("drain: %d submissions still in flight", self.in_flight)

    async def _send(self, job: Job) -> None:
        if self._lease_running_out(job):
            return  # not acked: its entry is reclaimed and claimed afresh, never sent twice
        decision = self._route(job.message)
        if decision.provider is None:
            await self._no_route(job, decision)
            return
        throttle = self._throttles.get(decision.provider)
        if throttle is not None:
            await throttle.acquire(job.message.parts)
        try:
            result = await self._providers[decision.provider].submit(_submission(job.message))
        except ProviderTemporaryError as exc:
            await self._retry(job, exc.code, exc.retry_after)
        except ProviderPermanentError as exc:
            await self._finish(job, store.FinalUpdate(job.message.id, State.REJECTED, exc.code))
        else:
            assert decision.price is not None
            await self._finish(job, self._submitted(decision.provider, decision.price, result))

    def _lease_running_out(self, job: Job) -> bool:
        """A job that waited most of its lease in a channel (a slow provider) is left:
        once the lease expires the sweeper or another dispatcher may send it too."""
        age = asyncio.get_running_loop().time() - job.claimed_at
        return age > self._settings.lease_s * 0.8

    def _route(self, message: Outbound) -> Decision:
        state = {n: RouteState(p.ready, p.capacity()) for n, p in self._providers.items()}
        return choose(RouteRequest(message.destination, message.parts), self._routes, state)

    def _submitted(self, provider: str, price: Decimal, result: SubmitResult) -> store.Submitted:
        forms = self._id_forms.get(provider, AUTO)
        keys = tuple(part_key(pid, forms) for pid in result.part_ids)
        return store.Submitted(result.message_id, provider, price, result.part_ids, keys)

    async def _no_route(self, job: Job, decision: Decision) -> None:
        if decision.routable:  # routes exist but all are down: wait for one
            await self._retry(job, "no_provider_up", 5.0)
        else:
            await self._finish(job, store.FinalUpdate(job.message.id, State.FAILED, "no_route"))

    async def _retry(self, job: Job, code: str, retry_after: float) -> None:
        m = job.message
        s = self._settings
        verdict = after_temporary_failure(
            m.attempts,
            s.max_attempts,
            retry_after,
            m.expires_at,
            datetime.now(UTC),
            s.retry_base_s,
            s.retry_cap_s,
        )
        if isinstance(verdict, GiveUp):
            await self._finish(job, store.FinalUpdate(m.id, verdict.state, code))
        else:
            await self._finish(job, store.Retry(m.id, verdict.delay_s, code))

    async def _finish(
        self, job: Job, outcome: store.Submitted | store.Retry | store.FinalUpdate
    ) -> None:
        await self._outcomes.record(Done(job.entries, outcome))


def _submission(message: Outbound) -> Submission:
    return Submission(
        message_id=message.id,
        destination=message.destination,
        source=message.sender,
        text=message.text,
        expires_at=message.expires_at,
    )
