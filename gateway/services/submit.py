"""Accepting messages: validated requests → limits → committed rows, charged → queue entries.

A request is answered only after its rows are committed (invariant 1), and a refused
request leaves nothing behind: no row, no charge, no count. In order:

1. Room: the writer's backlog is bounded in messages (503 when full).
2. Limits: the client's TPS and daily quota are taken in Redis, one round trip per
   request (429 when over, with the seconds to wait). They are given back if the request
   is refused or fails after this point, and the quota of duplicates is given back after.
3. Holds: each message is priced by the injected ``Quoter`` at the dearest route that may
   carry it (the route is chosen at dispatch).
4. Group commit: whole requests from all concurrent callers go through one ``Batcher``,
   so a request is never split between two transactions. Each transaction locks the
   billed clients' rows, lets ``billing.decide`` accept or refuse each request in arrival
   order (402), then inserts the accepted rows and debits their holds.
5. After the commit the immediate messages are XADDed to their priority stream and
   marked ``in_queue``; if the process dies in between, the sweeper enqueues them once
   ``due_at`` has passed. A committed chunk goes to the enqueuer as one item (a future
   per message cost more than its XADD).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiopg
from redis.exceptions import RedisError

from gateway.adapters import billing_store, message_store
from gateway.adapters.batching import Batcher, QueueFull
from gateway.adapters.billing_store import ClientLimiter, Taken
from gateway.adapters.redis_queue import RedisQueue
from gateway.core import billing
from gateway.core.billing import Account, Limits, Verdict
from gateway.core.errors import InsufficientFunds, Overloaded
from gateway.core.ids import IdGenerator
from gateway.core.message import Accepted, NewMessage, Priority
from gateway.metrics import families
from gateway.settings import DispatchSettings, StoreSettings

log = logging.getLogger("gateway.submit")

Queued = tuple[tuple[int, Priority], ...]  # one committed chunk's immediate messages
EXPRESS_REQUESTS = 100  # OTP requests per group commit of their own
ENQUEUE_MESSAGES = 2000  # per XADD pipeline, about: whole chunks of up to ``batch_rows``

Quoter = Callable[[str, int, Priority], Decimal | None]
"""(destination E.164, parts, priority) → the hold for the message: parts × the highest
price among the routes eligible for it; None when no route serves it (nothing is held:
the message fails at dispatch, free)."""


def per_part(price: Decimal) -> Quoter:
    """A fixed price per part, for any destination."""
    return lambda destination, parts, priority: price * parts


def free(destination: str, parts: int, priority: Priority) -> Decimal | None:
    """No price known at accept: nothing is held, the price is charged at submission."""
    return None


@dataclass(frozen=True, slots=True)
class Balance:
    account: Account | None  # None: the client is not billed
    limits: Limits
    used_today: int | None  # None: the client has no limits, and nothing is counted


@dataclass(frozen=True, slots=True)
class _Request:
    rows: tuple[message_store.Row, ...]  # (our id, message, hold)
    billed: bool  # False: known not billed, no funds transaction needed

    @property
    def urgent(self) -> bool:
        return all(m.priority is Priority.OTP for _, m, _ in self.rows)

    def items(self) -> list[billing.Item]:
        return [
            billing.Item(m.client_id, hold or Decimal(0), m.client_ref) for _, m, hold in self.rows
        ]


@dataclass(frozen=True, slots=True)
class _Written:
    stored: tuple[int, ...] = ()  # the stored id of each row: another one for a duplicate
    refused: Verdict | None = None
    failure: Exception | None = None


class SubmitService:
    def __init__(
        self,
        pool: aiopg.Pool,
        queue: RedisQueue,
        ids: IdGenerator,
        store: StoreSettings,
        dispatch: DispatchSettings,
        quoter: Quoter = free,
        limiter: ClientLimiter | None = None,
    ) -> None:
        self._pool = pool
        self._queue = queue
        self._ids = ids
        self._grace_s = dispatch.enqueue_grace_s
        self._batch_rows = store.batch_rows
        self._pending_limit = store.pending_limit
        self._pending = 0  # messages offered to the writer and not yet written
        self.quoter = quoter
        self.limiter = limiter or ClientLimiter(queue.client)
        self.writer: Batcher[_Request, _Written] = Batcher(
            "accept", self._write, store.batch_rows, store.batch_wait_ms / 1000, store.pending_limit
        )
        self._enqueue_limit = store.pending_limit * 2  # messages awaiting their XADD
        self._enqueueing = 0
        self.enqueuer: Batcher[Queued, None] = Batcher(
            "enqueue",
            self._enqueue,
            max(1, ENQUEUE_MESSAGES // store.batch_rows),
            0.002,
            self._enqueue_limit,  # in chunks: the bound in messages above binds first
        )
        # OTP requests commit and enqueue in small groups of their own: behind a bulk
        # load's 1000-message requests an OTP waited for their INSERTs and XADDs first
        # (OTP accept p99 171 ms with a bulk intake of 16,000/s).
        self.express: Batcher[_Request, _Written] = Batcher(
            "accept-otp", self._write, EXPRESS_REQUESTS, 0.001, store.pending_limit
        )
        self.express_enqueuer: Batcher[Queued, None] = Batcher(
            "enqueue-otp", self._enqueue, EXPRESS_REQUESTS, 0.001, self._enqueue_limit
        )

    @property
    def writers(self) -> tuple[Batcher[Any, Any], ...]:
        return (self.writer, self.enqueuer, self.express, self.express_enqueuer)

    async def run(self) -> None:
        await asyncio.gather(*(w.run() for w in self.writers))

    async def accept(
        self, messages: Sequence[NewMessage], limits: Limits | None = None
    ) -> list[Accepted]:
        """Commit one request's messages, all or none; returns once they are durable.

        ``limits`` are those of the requesting client (the first message's). Raises
        Overloaded (503), RateLimited / QuotaExceeded (429) or InsufficientFunds (402)."""
        if not messages:
            return []
        if self._pending + len(messages) > self._pending_limit:  # no 503 for half a request
            raise Overloaded("the gateway is at capacity, retry shortly", 1.0)
        taken = await self._take(messages[0].client_id, limits, len(messages))
        billed = limits is None or limits.billed
        try:
            request = _Request(self._rows(messages, billed), billed)
            stored = await self._write_request(request)
        except Exception:
            await self._give_back(taken, len(messages))
            raise
        rows = request.rows
        accepted = [
            Accepted(sid, m, sid != mid) for (mid, m, _), sid in zip(rows, stored, strict=True)
        ]
        duplicates = sum(a.duplicate for a in accepted)
        if duplicates:  # not sent again: they do not count against the quota
            await self._give_back(taken, duplicates, tokens=False)
        return accepted

    def _rows(self, messages: Sequence[NewMessage], billed: bool) -> tuple[message_store.Row, ...]:
        if not billed:
            return tuple((self._ids.next(), m, None) for m in messages)
        return tuple((self._ids.next(), m, self._hold(m)) for m in messages)

    async def _write_request(self, request: _Request) -> tuple[int, ...]:
        try:
            future = (self.express if request.urgent else self.writer).offer(request)
        except QueueFull:
            raise Overloaded("the gateway is at capacity, retry shortly", 1.0) from None
        self._pending += len(request.rows)
        try:
            written = await future
        finally:
            self._pending -= len(request.rows)
        if written.refused is not None:
            raise InsufficientFunds(written.refused.needed, written.refused.available)
        if written.failure is not None:  # most likely not committed; client_ref makes a retry safe
            log.warning("accept failed: %r", written.failure)
            raise Overloaded("the database is unavailable, retry shortly", 2.0)
        return written.stored

    def _hold(self, message: NewMessage) -> Decimal | None:
        return self.quoter(message.destination, message.parts, message.priority)

    async def _take(self, client_id: int, limits: Limits | None, n: int) -> Taken | None:
        if limits is None or limits.unlimited:
            return None
        try:
            return await self.limiter.admit(client_id, limits, n)
        except (RedisError, OSError) as exc:  # limits unknown is not unlimited
            log.warning("client limits unavailable: %r", exc)
            raise Overloaded("the rate limiter is unavailable, retry shortly", 1.0) from None

    async def _give_back(self, taken: Taken | None, n: int, tokens: bool = True) -> None:
        if taken is None:
            return
        try:
            await self.limiter.give_back(taken, n, tokens)
        except Exception as exc:  # the client loses a little quota for a while, no more
            log.warning("could not give back %d to client %d: %r", n, taken.client_id, exc)

    async def balance(self, client_id: int, limits: Limits) -> Balance:
        account = await billing_store.account(self._pool, client_id)
        used = None if limits.unlimited else await self.limiter.used_today(client_id)
        return Balance(account, limits, used)

    # --- the writer: one transaction per chunk of whole requests -----------------------
    async def _write(self, requests: Sequence[_Request]) -> list[_Written]:
        results: list[_Written] = []
        for chunk in _chunks(requests, self._batch_rows):
            results += await self._write_chunk(chunk)
        return results

    async def _write_chunk(self, chunk: list[_Request]) -> list[_Written]:
        try:
            written, new = await self._commit(chunk)
        except Exception as exc:  # these callers get it; the other chunks may have committed
            log.warning("accept: %d requests failed: %r", len(chunk), exc)
            return [_Written(failure=exc)] * len(chunk)
        rows = _rows(chunk)
        fresh = rows if len(new) == len(rows) else [row for row in rows if row[0] in new]
        queued = tuple((mid, m.priority) for mid, m, _ in fresh if m.send_at is None)
        if queued:
            self._fire_enqueue(queued)
        _count_accepted(fresh)
        return written

    async def _commit(self, chunk: list[_Request]) -> tuple[list[_Written], frozenset[int]]:
        if not any(r.billed for r in chunk):  # nothing to lock or debit: one statement
            async with self._pool.acquire() as conn, conn.cursor() as cur:
                inserted = await message_store.insert_rows(cur, _rows(chunk), self._grace_s)
            return _results(chunk, [billing.ACCEPTED] * len(chunk), inserted.ids), inserted.new
        async with self._pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            return await self._charge_and_insert(cur, chunk)

    async def _charge_and_insert(
        self, cur: Any, chunk: list[_Request]
    ) -> tuple[list[_Written], frozenset[int]]:
        """Inside the transaction: decide, insert what is accepted, debit its holds."""
        billed = [r for r in chunk if r.billed]
        accounts = await billing_store.lock_accounts(cur, _client_ids(billed))
        refs = [(m.client_id, m.client_ref) for r in chunk for _, m, _ in r.rows]
        billed_refs = [(cid, ref) for cid, ref in refs if cid in accounts]
        stored = await message_store.stored_refs(cur, billed_refs) if accounts else {}
        decision = billing.decide(accounts, [r.items() for r in chunk], stored.keys())
        accepted = [r for r, v in zip(chunk, decision.verdicts, strict=True) if v.accepted]
        rows = [_billed(row, accounts) for r in accepted for row in r.rows]
        inserted = await message_store.insert_rows(cur, rows, self._grace_s)
        holds = [
            billing.hold(m.client_id, mid, hold)
            for mid, m, hold in rows
            if mid in inserted.new and hold is not None
        ]
        await billing_store.post(cur, holds, locked=True)
        return _results(chunk, decision.verdicts, inserted.ids), inserted.new

    def _fire_enqueue(self, queued: Queued) -> None:
        """A committed chunk to the enqueuer, if its buffer (bounded in messages) has room;
        else the sweeper enqueues them after the grace period."""
        n, future = len(queued), None
        urgent = all(priority is Priority.OTP for _, priority in queued)
        if self._enqueueing + n <= self._enqueue_limit:
            with contextlib.suppress(QueueFull):
                future = (self.express_enqueuer if urgent else self.enqueuer).offer(queued)
        if future is None:
            _left_to_sweeper(queued)
            return
        self._enqueueing += n
        future.add_done_callback(functools.partial(self._enqueued, n))

    def _enqueued(self, n: int, future: asyncio.Future[None]) -> None:
        self._enqueueing -= n
        _ignore(future)

    async def _enqueue(self, chunks: Sequence[Queued]) -> list[None]:
        await message_store.enqueue(self._queue, self._pool, [q for c in chunks for q in c])
        return [None] * len(chunks)


def _left_to_sweeper(queued: Queued) -> None:
    log.warning("enqueue buffer full; %d messages left to the sweeper", len(queued))
    if log.isEnabledFor(logging.DEBUG):
        for mid, _ in queued:
            log.debug("left to the sweeper", extra={"message_id": mid})


def _count_accepted(fresh: Sequence[message_store.Row]) -> None:
    accepted = Counter(m.priority for _, m, _ in fresh)
    for priority, n in accepted.items():
        families.MESSAGES_ACCEPTED.inc(priority.label, by=n)
    if log.isEnabledFor(logging.DEBUG):  # a line per message: for tracing one, not for prod
        for mid, m, _ in fresh:
            log.debug("accepted", extra={"message_id": mid, "priority": m.priority.label})


def _chunks(requests: Sequence[_Request], max_rows: int) -> Iterator[list[_Request]]:
    """Whole requests, up to ``max_rows`` rows a chunk (a larger request alone)."""
    chunk: list[_Request] = []
    rows = 0
    for request in requests:
        if chunk and rows + len(request.rows) > max_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.append(request)
        rows += len(request.rows)
    if chunk:
        yield chunk


def _rows(chunk: Sequence[_Request]) -> list[message_store.Row]:
    return [row for r in chunk for row in r.rows]


def _client_ids(chunk: Sequence[_Request]) -> list[int]:
    return sorted({m.client_id for r in chunk for _, m, _ in r.rows})


def _billed(row: message_store.Row, accounts: dict[int, Account]) -> message_store.Row:
    """Only billed clients' messages carry a hold (None: the quoter knew no route → 0)."""
    mid, message, hold = row
    if message.client_id not in accounts:
        return mid, message, None
    return mid, message, hold if hold is not None else Decimal(0)


def _results(
    chunk: Sequence[_Request], verdicts: Sequence[Verdict], ids: dict[int, int]
) -> list[_Written]:
    return [
        _Written(tuple([ids[mid] for mid, _, _ in r.rows])) if v.accepted else _Written(refused=v)
        for r, v in zip(chunk, verdicts, strict=True)
    ]


def _ignore(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: the sweeper covers a failed enqueue
