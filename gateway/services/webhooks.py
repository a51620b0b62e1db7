"""Status callbacks: signed (Standard Webhooks), retried with backoff for over 24 h.

The outbox rows are written in the same statement as the status change, so a callback
is never lost. Two ways out:

- **Handed over** (gateway/services/webhook_handoff.py): a process that records final
  states and runs this service writes its new rows already leased (due only when the
  lease ends) and hands them over after the commit; they go out at once and their
  results are recorded in batches. No claim, no poll: the callback follows the receipt
  by milliseconds, and callbacks leave as evenly as receipts arrive. (Claimed every
  0.5 s, they left in bursts of ~1,000; at 2,000 requests/s the accept p99 was 64.5 ms
  then, 22.2 ms handed over: docs/benchmarks.md.)
- **Claimed**: the poller claims due rows in batches (a lease, so that several processes
  share the work and a crashed one's rows come back): retries, rows of processes without
  this role, inbound forwards, and whatever was handed over but not sent.

A slow receiver holds only this service's senders (the handoff has its own): it never
blocks dispatch, which does not wait on this service at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence

import aiopg

from gateway.adapters import webhook_store
from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.guarded_resolver import GuardedResolver, RefusedTarget
from gateway.adapters.webhook_http import WebhookHttp
from gateway.adapters.webhook_store import Delivery
from gateway.core.signing import headers
from gateway.core.ssrf import parse_networks, url_refusal
from gateway.metrics import families
from gateway.services.webhook_handoff import Handoff
from gateway.settings import WebhookSettings
from providers.backoff import backoff_delay

log = logging.getLogger("gateway.webhooks")
HANDOFF_BATCHES = 4  # handed over and not yet recorded: at most this many poller batches


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
        self.handoff = Handoff(
            self._lease,
            settings.timeout_s,
            settings.concurrency,
            settings.batch * HANDOFF_BATCHES,
            self._record,
            functools.partial(webhook_store.release, pool),
        )
        self.delivered = 0
        self.failed = 0

    async def run(self) -> None:
        resolver = GuardedResolver(self._allow)
        http = WebhookHttp(resolver, self._settings.timeout_s, self._settings.concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._poll(http))
                group.create_task(self.handoff.run(functools.partial(self._post, http)))
        finally:
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
