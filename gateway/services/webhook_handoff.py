"""Status callbacks handed over by the process that wrote them: sent at once, recorded in
batches, never claimed.

A final-state statement of a process that runs the ``webhooks`` role writes its outbox
rows leased (``hold_s``) and returns them; after the commit they are handed here
(``hand``). Each is posted as soon as one of this handoff's own senders is free (the
poller's retries to a slow receiver do not hold fresh callbacks back), and the results are
written in one UPDATE per ``RECORD_EVERY_S``.

Nothing is lost and, short of a crash, nothing goes twice:
- a callback that waited so long that its lease could end before its result is written
  is dropped here: the poller takes it when the lease ends;
- a process that dies leaves its rows leased; they come due when the lease ends;
- a clean stop lets the posts in flight finish (``STOP_WAIT_S``), writes the results in
  hand, and makes the rest due at once (``release``), for the next process;
- rows handed after the stop began are released at once the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.message_store import StatusEvent
from gateway.adapters.webhook_store import Delivery

log = logging.getLogger("gateway.webhooks")

RECORD_EVERY_S = 0.02  # a write per callback would cost more than the callback
RECORD_TRIES = 3
STOP_WAIT_S = 2.0

Post = Callable[[Delivery], Awaitable[str | None]]  # None: taken (2xx); else why not
Record = Callable[[Sequence[Delivery], Sequence[str | None]], Awaitable[None]]
Release = Callable[[Sequence[int]], Awaitable[None]]
Result = tuple[Delivery, str | None]


class Handoff:
    def __init__(
        self,
        lease_s: float,
        timeout_s: float,
        concurrency: int,
        room: int,
        record: Record,
        release: Release,
    ) -> None:
        self._lease = lease_s
        # Posted and recorded within the lease: a post takes up to timeout_s, and the
        # lease began at its transaction's start, before the hand.
        self._max_wait = lease_s - 2 * timeout_s
        self._limit = asyncio.Semaphore(concurrency)
        self._room = room
        self._record = record
        self._release = release
        self._handed: deque[tuple[float, Delivery]] = deque()  # (when, what), oldest first
        self._has_handed = asyncio.Event()
        self._open: dict[int, Delivery] = {}  # handed over, result not yet written
        self._results: list[Result] = []
        self._recording: list[Result] = []  # being written now
        self._has_results = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.running = False

    @property
    def pending(self) -> int:
        """Callbacks handed over whose result is not yet written."""
        return len(self._open)

    def hold_s(self) -> float:
        """How long a final-state statement about to run should hold its new outbox rows
        for ``hand``: the lease while this runs and has room, else 0 (due at once, for the
        poller; a few batches over ``room`` are taken all the same)."""
        return self._lease if self.running and self.pending < self._room else 0.0

    def hand(self, events: Sequence[StatusEvent], held_s: float) -> None:
        """After the commit: the callbacks of rows written with ``hold_s``'s hold."""
        hooks = [e.hook for e in events if e.hook is not None] if held_s > 0 else []
        if not hooks:
            return
        if not self.running:  # held while this was running, committed after it stopped
            self._spawn(self._release_quietly([d.id for d in hooks]))
            return
        now = time.monotonic()
        for delivery in hooks:
            self._handed.append((now, delivery))
            self._open[delivery.id] = delivery
        self._has_handed.set()

    async def run(self, post: Post) -> None:
        self.running = True
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._send_loop(post))
                group.create_task(self._recorder())
        finally:
            self.running = False
            await self._settle()

    async def _send_loop(self, post: Post) -> None:
        while True:
            if not self._handed:
                self._has_handed.clear()
                await self._has_handed.wait()
                continue
            handed_at, delivery = self._handed.popleft()
            await self._limit.acquire()
            if time.monotonic() - handed_at > self._max_wait:
                self._limit.release()  # the poller takes it when the lease ends
                self._open.pop(delivery.id, None)
                continue
            task = self._spawn(self._send(post, delivery))
            task.add_done_callback(lambda _: self._limit.release())

    async def _send(self, post: Post, delivery: Delivery) -> None:
        try:
            result = await post(delivery)
        except Exception as exc:  # a failed attempt, retried by the poller: never stranded
            log.warning("webhook %d: %r", delivery.id, exc)
            result = type(exc).__name__
        self._results.append((delivery, result))
        self._has_results.set()

    async def _recorder(self) -> None:
        while True:
            await self._has_results.wait()
            await asyncio.sleep(RECORD_EVERY_S)  # let the batch grow
            self._has_results.clear()
            self._recording, self._results = self._results, []
            await self._write(self._recording)
            for delivery, _ in self._recording:
                self._open.pop(delivery.id, None)
            self._recording = []

    async def _write(self, batch: list[Result]) -> None:
        """A batch that cannot be written stays leased: the poller sends it again when the
        lease ends."""
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                await self._record([d for d, _ in batch], [r for _, r in batch])
                return
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("could not record %d webhook results: %r", len(batch), exc)
                if attempt < RECORD_TRIES:
                    await asyncio.sleep(0.5 * attempt)

    async def _settle(self) -> None:
        """A clean stop (best effort: what fails here waits for its lease to end)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)  # a resend would be twice
        for task in self._tasks:
            task.cancel()
        batch, self._recording, self._results = self._recording + self._results, [], []
        answered = {d.id for d, _ in batch}
        unsent = [i for i in self._open if i not in answered]
        self._open, self._handed = {}, deque()
        try:
            if batch:
                await self._record([d for d, _ in batch], [r for _, r in batch])
            if unsent:
                await self._release(unsent)
        except Exception as exc:  # stopping: nothing to retry with
            log.warning("could not settle %d handed webhooks: %r", len(batch) + len(unsent), exc)

    async def _release_quietly(self, ids: list[int]) -> None:
        try:
            await self._release(ids)
        except Exception as exc:  # the lease ends in time
            log.warning("could not release %d webhooks: %r", len(ids), exc)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
