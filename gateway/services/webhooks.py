"""Status callbacks: signed (Standard Webhooks), retried with backoff for over 24 h.

The outbox rows are written in the same statement as the status change, so a callback
is never lost. Two ways out:

- **Handed over**: a process that records final states and runs this service writes
  its new rows already leased (``hold_s``: due only when the lease ends) and hands them
  here after the commit (``hand``); they go out at once, each as it comes, and their
  results are recorded in batches. No claim, no poll: the callback follows the receipt
  by milliseconds, and callbacks leave as evenly as receipts arrive. (Claimed every
  0.5 s, they left in bursts of ~1,000; at 2,000 requests/s the accept p99 was 64.5 ms
  then, 22.2 ms handed over: docs/benchmarks.md.) Should the process die, the rows come
  due when their lease ends; on a clean stop, those not yet recorded are released at once.
- **Claimed**: the poller claims due rows in batches (a lease, so that several processes
  share the work and a crashed one's rows come back): retries, rows of processes without
  this role, inbound forwards, and whatever was handed over but not sent.

A slow receiver holds only its own requests: it never blocks dispatch, which does not
wait on this service at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Sequence

import aiopg

from gateway.adapters import webhook_store
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.guarded_resolver import GuardedResolver, RefusedTarget
from gateway.adapters.message_store import StatusEvent
from gateway.adapters.webhook_http import WebhookHttp
from gateway.adapters.webhook_store import Delivery
from gateway.core.signing import headers
from gateway.core.ssrf import parse_networks, url_refusal
from gateway.metrics import families
from gateway.settings import WebhookSettings
from providers.backoff import backoff_delay

log = logging.getLogger("gateway.webhooks")
HANDOFF_BATCHES = 4  # handed over and not yet recorded: at most this many poller batches
RECORD_EVERY_S = 0.02


class WebhookService:
    def __init__(self, settings: WebhookSettings, pool: aiopg.Pool) -> None:
        self._settings = settings
        self._pool = pool
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._allow = parse_networks(settings.allow_networks)
        # A pure function of the URL here (the allow list is fixed): one parse per URL,
        # not per callback (a client usually has one URL for millions of callbacks).
        self._refusal = functools.lru_cache(maxsize=4096)(self._url_refusal)
        self._lease = settings.timeout_s * 3 + 30
        self._handed: deque[tuple[float, Delivery]] = deque()  # (when, what), oldest first
        self._has_handed = asyncio.Event()
        self._open: dict[int, Delivery] = {}  # handed over, result not yet recorded
        self._results: list[tuple[Delivery, str | None]] = []
        self._has_results = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._running = False
        self.delivered = 0
        self.failed = 0

    def hold_s(self) -> float:
        """How long a final-state statement about to run here should hold its new outbox
        rows for ``hand``: the lease while this service runs and has room, else 0 (due at
        once, for the poller; a few batches over the limit are taken all the same)."""
        room = len(self._open) < self._settings.batch * HANDOFF_BATCHES
        return self._lease if self._running and room else 0.0

    def hand(self, events: Sequence[StatusEvent], held_s: float) -> None:
        """After the commit: the callbacks of rows written with ``hold_s``'s hold."""
        if held_s <= 0:
            return
        now = time.monotonic()
        for event in events:
            if event.hook is not None:
                self._handed.append((now, event.hook))
                self._open[event.hook.id] = event.hook
        self._has_handed.set()

    async def run(self) -> None:
        resolver = GuardedResolver(self._allow)
        http = WebhookHttp(resolver, self._settings.timeout_s, self._settings.concurrency)
        self._running = True
        try:
            await asyncio.gather(self._poll(http), self._send_handed(http), self._recorder())
        finally:
            self._running = False
            for task in self._sending:
                task.cancel()
            await self._settle_handed()
            http.close()
            await resolver.close()

    async def _poll(self, http: WebhookHttp) -> None:
        while True:
            raise_if_cancelling()  # a cancel lost in aiopg's wait_for
            sent = await self._round(http)
            if sent < self._settings.batch:
                await asyncio.sleep(self._settings.poll_interval_s)

    async def _round(self, http: WebhookHttp) -> int:
        try:
            batch = await webhook_store.claim(self._pool, self._settings.batch, self._lease)
            if batch:
                results = await asyncio.gather(*(self._send(http, d) for d in batch))
                await self._record(batch, results)
        except TRANSIENT as exc:  # unrecorded attempts are made again when the lease ends
            raise_if_cancelling()
            log.warning("outbox unreachable: %r", exc)
            return 0
        return len(batch)

    async def _send_handed(self, http: WebhookHttp) -> None:
        """Each handed callback as soon as a sender is free. One whose lease is half gone
        (a receiver slower than the rest) is left to the poller, which takes it when the
        lease ends: sent here as well, it could go twice."""
        while True:
            if not self._handed:
                self._has_handed.clear()
                await self._has_handed.wait()
                continue
            handed_at, delivery = self._handed.popleft()
            if time.monotonic() - handed_at > self._lease / 2:
                self._open.pop(delivery.id, None)
                continue
            await self._limit.acquire()
            task = asyncio.create_task(self._send_one(http, delivery))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_one(self, http: WebhookHttp, delivery: Delivery) -> None:
        try:
            result = await self._post(http, delivery)
        finally:
            self._limit.release()
        self._results.append((delivery, result))
        self._has_results.set()

    async def _recorder(self) -> None:
        """The handed callbacks' results, a batch per ``RECORD_EVERY_S`` at most: one
        UPDATE for many callbacks. A batch that cannot be written stays leased; the
        poller sends those again when the lease ends."""
        while True:
            await self._has_results.wait()
            await asyncio.sleep(RECORD_EVERY_S)  # let the batch grow: a write per callback
            self._has_results.clear()  # cost more than the callback
            batch, self._results = self._results, []
            try:
                await self._record([d for d, _ in batch], [r for _, r in batch])
            except TRANSIENT as exc:
                raise_if_cancelling()
                log.warning("could not record %d webhook results: %r", len(batch), exc)
            for delivery, _ in batch:
                self._open.pop(delivery.id, None)

    async def _settle_handed(self) -> None:
        """On a clean stop: the results in hand are recorded, and what was handed over
        and not sent comes due at once, for the next process, instead of when its lease
        ends. Best effort: a failure here leaves the leases to end."""
        batch, self._results = self._results, []
        answered = {d.id for d, _ in batch}
        unsent = [i for i in self._open if i not in answered]
        self._open = {}
        try:
            if batch:
                await self._record([d for d, _ in batch], [r for _, r in batch])
            if unsent:
                await webhook_store.release(self._pool, unsent)
        except Exception as exc:  # stopping: nothing to retry with
            log.warning("could not settle %d handed webhooks: %r", len(batch) + len(unsent), exc)

    async def _send(self, http: WebhookHttp, delivery: Delivery) -> str | None:
        async with self._limit:
            return await self._post(http, delivery)

    async def _post(self, http: WebhookHttp, delivery: Delivery) -> str | None:
        """None when the receiver took it (2xx), else why not. SSRF: the URL is checked
        again (it may predate the check or the config; a literal address skips the
        resolver), a name's addresses by the resolver, and no redirect is followed."""
        refusal = self._refusal(delivery.url)
        if refusal is not None:
            return f"refused: {refusal}"
        body = delivery.payload.encode()
        signed = headers(delivery.secret, f"evt_{delivery.id}", int(time.time()), body)
        try:
            status = await http.post(delivery.url, body, signed)
        except (TimeoutError, OSError, ValueError) as exc:
            return _reason(exc)
        return None if 200 <= status < 300 else f"HTTP {status}"

    async def _record(self, batch: Sequence[Delivery], results: Sequence[str | None]) -> None:
        delivered = [d.id for d, error in zip(batch, results, strict=True) if error is None]
        failed = [
            (d.id, error, self._delay(d.attempts))
            for d, error in zip(batch, results, strict=True)
            if error is not None
        ]
        self.delivered += len(delivered)
        self.failed += len(failed)
        families.WEBHOOK_DELIVERIES.inc("delivered", by=len(delivered))
        families.WEBHOOK_DELIVERIES.inc("retry", by=len(failed))
        await webhook_store.record(self._pool, delivered, failed, self._settings.give_up_after_h)

    def _url_refusal(self, url: str) -> str | None:
        return url_refusal(url, self._allow)

    def _delay(self, attempts: int) -> float:
        s = self._settings
        return backoff_delay(attempts, s.retry_base_s, s.retry_cap_s)


def _reason(exc: BaseException) -> str:
    """What the outbox records: the error's kind, or why the target was refused."""
    refused = exc if isinstance(exc, RefusedTarget) else exc.__cause__
    if isinstance(refused, RefusedTarget):
        return f"refused: {refused}"
    return type(exc).__name__
