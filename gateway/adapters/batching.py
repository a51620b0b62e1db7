"""Group commit: many callers' items, one statement.

A ``Batcher`` owns one task that waits for the first item, gathers more until it has
``max_items`` or ``max_wait`` has passed, and hands the lot to ``flush`` (one SQL
statement, one Redis pipeline). Each caller's future resolves with its own result
when the batch is done, or with the batch's exception. A full queue is the
backpressure: ``offer`` refuses at once (the API answers 503), ``put`` waits.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from gateway.adapters.failures import raise_if_cancelling
from providers.backoff import backoff_delay

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("gateway.batching")


class QueueFull(Exception):
    pass


class Batcher(Generic[T, R]):
    def __init__(
        self,
        name: str,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        max_items: int = 1000,
        max_wait: float = 0.004,
        limit: int = 20_000,
        retry_for: float = 0.0,
    ) -> None:
        self.name = name
        self._flush = flush
        self._max_items = max_items
        self._max_wait = max_wait
        self._retry_for = retry_for
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue(limit)
        self.batches = 0
        self.items = 0

    def offer(self, item: T) -> asyncio.Future[R]:
        """Queue an item now or raise QueueFull; await the future for its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((item, future))
        except asyncio.QueueFull:
            raise QueueFull(self.name) from None
        return future

    async def put(self, item: T) -> asyncio.Future[R]:
        """Queue an item, waiting for room (backpressure for internal producers)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        if self._queue.full():
            await self._queue.put((item, future))
        else:  # no coroutine to run: this is called for every message
            self._queue.put_nowait((item, future))
        return future

    async def call(self, item: T) -> R:
        return await (await self.put(item))

    def has_room(self, items: int) -> bool:
        return self._queue.maxsize - self._queue.qsize() >= items

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """The flushing loop; runs until cancelled, then fails what is still queued."""
        try:
            while True:
                raise_if_cancelling()  # a cancel lost in aiopg's wait_for
                batch = await self._gather()
                await self._run_batch(batch)
        finally:
            self._fail_queued()

    async def _gather(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self._max_wait
        while len(batch) < self._max_items:
            if self._queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
                continue
            batch.append(self._queue.get_nowait())
        return batch

    async def _run_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            await self._flush_batch(batch)
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _flush_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush_with_retry([item for item, _ in batch])
        except asyncio.CancelledError:
            _fail_all(batch, ConnectionError(f"{self.name}: shutting down"))
            raise
        except Exception as exc:  # the callers get it; this loop must go on
            _fail_all(batch, exc)
            raise_if_cancelling()
            log.warning("%s: batch of %d failed: %r", self.name, len(batch), exc)
            return
        self.batches += 1
        self.items += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def drained(self, within: float) -> bool:
        """Wait until everything queued so far has been flushed (or failed)."""
        try:
            async with asyncio.timeout(within):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def _flush_with_retry(self, items: list[T]) -> Sequence[R]:
        """Retry a failed flush (a database restarting) for up to ``retry_for`` seconds.
        Every flush function is idempotent, so a retry after an unseen commit is safe."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry_for
        for attempt in itertools.count():
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            try:
                return await self._flush(items)
            except Exception as exc:
                raise_if_cancelling()
                if loop.time() >= deadline:
                    raise
                log.warning("%s: batch failed (%r), retrying", self.name, exc)
                await asyncio.sleep(backoff_delay(attempt, 0.1, 2.0))
        raise AssertionError("unreachable")

    def _fail_queued(self) -> None:
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            self._queue.task_done()
            if not future.done():
                future.set_exception(ConnectionError(f"{self.name}: shutting down"))


def _fail_all(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
