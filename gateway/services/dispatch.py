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
import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

import aiopg
from redis.exceptions import ResponseError

from gateway.adapters import message_store as store
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.inbound_store import opted_out
from gateway.adapters.redis_queue import Entry, RedisQueue
from gateway.core.ids import id_time_ms
from gateway.core.inbound import bulk_refusal
from gateway.core.lifecycle import State
from gateway.core.message import Outbound, Priority
from gateway.core.receipts import AUTO, IdForms, part_key
from gateway.core.scheduling import GiveUp, WeightedPicker, after_temporary_failure
from gateway.log_context import MESSAGE_ID
from gateway.metrics import families
from gateway.services.outcomes import Done, OutcomeWriter
from gateway.services.router import Router
from gateway.settings import DispatchSettings
from providers.base import (
    Provider,
    ProviderPermanentError,
    ProviderTemporaryError,
    Submission,
    SubmitResult,
)
from routing import Decision

log = logging.getLogger("gateway.dispatch")
_MAX_DEFERRAL_S = 60.0


class Throttle(Protocol):
    @property
    def rate(self) -> float: ...

    async def acquire(self, parts: int) -> None: ...


class Job(NamedTuple):  # a tuple: one is built for every message
    message: Outbound
    entries: tuple[Entry, ...]
    claimed_at: float = 0.0  # loop time of the claim: the lease runs from here


FULL_LANE_BLOCK_MS = 20


def block_for(room: Mapping[Priority, int]) -> int:
    """How long an empty read may block on the streams whose lanes have room. A full
    lane's stream may hold more than it can take now: block only briefly, or that lane
    waits a whole second once its senders drain it (one busy priority ran at one read
    batch per second)."""
    return 1000 if all(room.values()) else FULL_LANE_BLOCK_MS


def otp_senders(senders: int) -> int:
    """How many of ``senders`` take OTPs only: an eighth, at most 16, none below 16."""
    return min(16, senders // 8) if senders >= 16 else 0


def urgent_first(entries: list[Entry]) -> list[list[Entry]]:
    """The OTP entries of a read as a group before the others (none empty)."""
    urgent = [e for e in entries if e.priority is Priority.OTP]
    if not urgent or len(urgent) == len(entries):
        return [entries] if entries else []
    return [urgent, [e for e in entries if e.priority is not Priority.OTP]]


class Channels:
    """Bounded per-priority channels with a weighted pick across them."""

    def __init__(self, capacity: int, weights: Sequence[int]) -> None:
        self.capacity = capacity
        self._lanes: dict[Priority, deque[Job]] = {p: deque() for p in Priority}
        self._ordered = [self._lanes[p] for p in Priority]  # by the picker's index
        self._picker = WeightedPicker(weights)
        self._has_work = asyncio.Event()
        self._has_otp = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()

    def room(self) -> dict[Priority, int]:
        return {p: max(0, self.capacity - len(lane)) for p, lane in self._lanes.items()}

    def put(self, job: Job) -> None:
        self._lanes[job.message.priority].append(job)
        self._has_work.set()
        if job.message.priority is Priority.OTP:
            self._has_otp.set()

    async def get_otp(self) -> Job:
        """The next OTP job only (the senders kept for OTPs)."""
        lane = self._lanes[Priority.OTP]
        while not lane:
            self._has_otp.clear()
            await self._has_otp.wait()
        job = lane.popleft()
        self._has_room.set()
        return job

    async def get(self) -> Job:
        while True:
            lane = self._next_lane()
            if lane is not None:
                job = lane.popleft()
                self._has_room.set()
                return job
            self._has_work.clear()
            await self._has_work.wait()

    def _next_lane(self) -> deque[Job] | None:
        """The weighted pick; with one lane busy, that lane (the pick would choose it and
        leave its counters as they were: skipped, as it runs for every message)."""
        busy = [lane for lane in self._ordered if lane]
        if len(busy) <= 1:
            return busy[0] if busy else None
        index = self._picker.pick([bool(lane) for lane in self._ordered])
        return None if index is None else self._ordered[index]

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
        router: Router,
        outcomes: OutcomeWriter,
        id_forms: Mapping[str, IdForms],
        consumer: str,
        throttles: Mapping[str, Throttle] | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._queue = queue
        self._providers = providers
        self.router = router
        self._outcomes = outcomes
        self._id_forms = id_forms
        self._consumer = consumer
        self._throttles = dict(throttles or {})
        # Configured windows (not the current room: a provider may still be binding).
        self._windows = {name: max(1, p.snapshot().window_max) for name, p in providers.items()}
        self._limits = {name: self._limit(name) for name in providers}
        # Enough senders for every provider to hold its limit at once: one that is slow
        # or saturated never takes the senders the others need (see ``_crowded``).
        self.senders = max(8, min(4000, sum(self._limits.values())))
        self._assigned: dict[str, int] = dict.fromkeys(providers, 0)
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
            # A few of the senders take OTPs only: under a bulk load every other sender
            # waits for its bulk outcome's commit, and an OTP would wait for one to come
            # free. Taken from the total, so the in-flight bound stays the same.
            otp_only = otp_senders(self.senders)
            for n in range(self.senders):
                tasks.create_task(self._send_loop(otp_only=n < otp_only))

    # --- reading --------------------------------------------------------------------
    async def _read_loop(self) -> None:
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
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
                raise_if_cancelling()
                log.warning("queue unreachable: %r", exc)
                await asyncio.sleep(1.0)
                continue
            # OTPs are claimed first in a statement of their own: a claim of hundreds of
            # bulk rows takes tens of milliseconds that an OTP need not wait for.
            for group in urgent_first(entries):
                await self._admit_or_leave(group)

    async def _recreate_groups(self) -> None:
        try:
            await self._queue.ensure_groups()
        except TRANSIENT as exc:
            raise_if_cancelling()
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
                raise_if_cancelling()
                log.warning("claiming %d entries failed (%r)", len(entries), exc)
                await asyncio.sleep(0.2 * (attempt + 1))

    async def _read(self, room: dict[Priority, int]) -> list[Entry]:
        counts = {p: min(n, self._settings.read_batch) for p, n in room.items()}
        entries = await self._queue.read(self._consumer, counts, None)
        return entries or await self._queue.wait(self._consumer, counts, block_for(room))

    async def _admit(self, entries: list[Entry]) -> None:
        by_id: dict[int, list[Entry]] = {}
        for entry in entries:
            by_id.setdefault(entry.message_id, []).append(entry)
        claimed_at = asyncio.get_running_loop().time()
        claimed = await store.claim(self._pool, list(by_id), self._settings.lease_s)
        bulk = [m.destination for m in claimed if m.priority is Priority.BULK]
        blocked = await opted_out(self._pool, bulk) if bulk else set()
        now = datetime.now(UTC)
        for message in claimed:
            job = Job(message, tuple(by_id.pop(message.id)), claimed_at)
            refusal = _refusal(message, now, blocked)
            if refusal is not None:
                await self._finish(job, refusal)
            else:
                self.channels.put(job)
        leftovers = tuple(e for group in by_id.values() for e in group)
        if leftovers:  # done already, or leased by another dispatcher
            await self._outcomes.record(Done(leftovers, None))

    async def _reclaim_loop(self) -> None:
        idle_ms = int(self._settings.lease_s * 1000)
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            await asyncio.sleep(min(10.0, self._settings.lease_s / 2))
            try:
                entries = await self._queue.reclaim(self._consumer, idle_ms, 500)
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("reclaim failed: %r", exc)
                continue
            if entries:
                log.info("reclaimed %d entries from dead consumers", len(entries))
                await self._admit_or_leave(entries)

    # --- sending --------------------------------------------------------------------
    async def _send_loop(self, otp_only: bool = False) -> None:
        task = asyncio.current_task()
        assert task is not None
        get = self.channels.get_otp if otp_only else self.channels.get
        while True:
            if task.cancelling():  # raise_if_cancelling(), without its look-up per message
                raise asyncio.CancelledError
            job = await get()
            self.in_flight += 1
            self._idle.clear()
            traced = MESSAGE_ID.set(job.message.id)  # on every line logged while sending
            try:
                await self._send(job)
            finally:
                MESSAGE_ID.reset(traced)
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
        """Route and submit; a temporary failure moves the message to the next route
        (up to the policy's limit), and only then back to the queue with a delay."""
        if self._lease_running_out(job):
            return  # not acked: its entry is reclaimed and claimed afresh, never sent twice
        excluded: frozenset[str] = frozenset()
        failure: ProviderTemporaryError | None = None
        while True:
            decision = self.router.decide(job.message, excluded)
            if decision.provider is None:
                await self._unroutable(job, decision, failure)
                return
            if decision.outcome == "wait" and self._crowded(decision.provider):
                await self._defer(job, failure)
                return
            failure = await self._assign(job, decision)
            if failure is None:
                return
            excluded |= {decision.provider}

    def _limit(self, provider: str) -> int:
        """Messages that may be on one provider at once: its window, and a second of its
        TPS waiting for tokens."""
        throttle = self._throttles.get(provider)
        return self._windows.get(provider, 1) + (round(throttle.rate) if throttle else 0)

    def _crowded(self, provider: str) -> bool:
        """A message that would only wait here would hold a sender beyond the limit."""
        return self._assigned.get(provider, 0) >= self._limits.get(provider, 1)

    async def _defer(
        self, job: Job, failure: ProviderTemporaryError | None, code: str = "waiting_for_route"
    ) -> None:
        """Back to the queue. The delay grows with the message's age (half of it, with
        jitter: a geometric backoff that needs no counter), so a deep backlog waiting for
        one cheap route does not churn the database. The claim's attempt is given back
        unless a provider did see the message in this turn."""
        delay = _deferral(job.message.id, time.time(), failure.retry_after if failure else 0.0)
        retry = store.Retry(job.message.id, delay, code, failure is not None)
        await self._finish(job, retry)

    async def _assign(self, job: Job, decision: Decision) -> ProviderTemporaryError | None:
        assert decision.provider is not None
        self._assigned[decision.provider] = self._assigned.get(decision.provider, 0) + 1
        try:
            return await self._submit(job, decision)
        finally:
            self._assigned[decision.provider] -= 1

    async def _submit(self, job: Job, decision: Decision) -> ProviderTemporaryError | None:
        """One attempt on the decided route; returns the temporary error, if any."""
        provider = decision.provider
        assert provider is not None and decision.total is not None
        throttle = self._throttles.get(provider)
        if throttle is not None:
            await throttle.acquire(job.message.parts)
        if self._lease_running_out(job):
            return None  # not acked: reclaimed once its lease ends, never sent twice
        self.router.submitting(decision)
        submission = _submission(job.message, decision.sender or job.message.sender)
        started = time.perf_counter()
        try:
            result = await self._providers[provider].submit(submission)
        except ProviderTemporaryError as exc:
            families.count_submit_error(provider, exc.code, permanent=False)
            self.router.record(provider, "temporary_error")
            return exc
        except ProviderPermanentError as exc:
            families.count_submit_error(provider, exc.code, permanent=True)
            self.router.record(provider, "ok")  # the route answered: the message is bad
            await self._finish(job, store.FinalUpdate(job.message.id, State.REJECTED, exc.code))
        else:
            families.SUBMIT_LATENCY.observe(time.perf_counter() - started, provider)
            self.router.record(provider, "ok")
            await self._finish(job, self._submitted(provider, decision.total, result))
        return None

    def _lease_running_out(self, job: Job) -> bool:
        """A job that waited most of its lease in a channel (a slow provider) is left:
        once the lease expires the sweeper or another dispatcher may send it too."""
        age = asyncio.get_running_loop().time() - job.claimed_at
        return age > self._settings.lease_s * 0.8

    def _submitted(self, provider: str, price: Decimal, result: SubmitResult) -> store.Submitted:
        forms = self._id_forms.get(provider, AUTO)
        keys = tuple(part_key(pid, forms) for pid in result.part_ids)
        return store.Submitted(result.message_id, provider, price, result.part_ids, keys)

    async def _unroutable(
        self, job: Job, decision: Decision, failure: ProviderTemporaryError | None
    ) -> None:
        if not decision.routable:
            await self._finish(job, store.FinalUpdate(job.message.id, State.FAILED, "no_route"))
        elif failure is not None:  # every route it may take failed just now: later
            await self._retry(job, failure.code, failure.retry_after)
        else:  # routes exist but none is up, or their breakers are open: wait for one.
            # No provider saw it, so no attempt is spent: as retries, a bind reconnecting
            # for a second cost messages 30 s of backoff, and a long outage their life.
            await self._defer(job, None, decision.reason)

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


def _deferral(message_id: int, now: float, at_least: float) -> float:
    age = max(0.0, now - id_time_ms(message_id) / 1000)
    return max(at_least, min(_MAX_DEFERRAL_S, max(2.0, age / 2) * random.uniform(1.0, 1.5)))


def _refusal(message: Outbound, now: datetime, blocked: set[str]) -> store.FinalUpdate | None:
    """A message that ends before it is sent: out of validity, or bulk to an opted-out
    number (the opt-out may have come after the message was accepted)."""
    if message.expires_at is not None and message.expires_at <= now:
        return store.FinalUpdate(message.id, State.EXPIRED, "validity")
    code = bulk_refusal(message.priority, message.destination, blocked)
    return store.FinalUpdate(message.id, State.REJECTED, code) if code else None


def _submission(message: Outbound, sender: str) -> Submission:
    return Submission(
        message_id=message.id,
        destination=message.destination,
        source=sender,
        text=message.text,
        expires_at=message.expires_at,
    )
