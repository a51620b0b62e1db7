"""Status callbacks: signed (Standard Webhooks), retried with backoff for over 24 h.

The outbox rows are written in the same statement as the status change, so a callback
is never lost; this service claims due rows in batches (a lease, so that several
processes share the work and a crashed one's rows come back), POSTs them concurrently
and records the results in batches. A slow receiver holds only its own requests: it
never blocks dispatch, which does not wait on this service at all.
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
from gateway.settings import WebhookSettings
from providers.backoff import backoff_delay

log = logging.getLogger("gateway.webhooks")


class WebhookService:
    def __init__(self, settings: WebhookSettings, pool: aiopg.Pool) -> None:
        self._settings = settings
        self._pool = pool
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._allow = parse_networks(settings.allow_networks)
        # A pure function of the URL here (the allow list is fixed): one parse per URL,
        # not per callback (a client usually has one URL for millions of callbacks).
        self._refusal = functools.lru_cache(maxsize=4096)(self._url_refusal)
        self.delivered = 0
        self.failed = 0

    async def run(self) -> None:
        resolver = GuardedResolver(self._allow)
        http = WebhookHttp(resolver, self._settings.timeout_s, self._settings.concurrency)
        try:
            while True:
                raise_if_cancelling()  # a cancel lost in aiopg's wait_for
                sent = await self._round(http)
                if sent < self._settings.batch:
                    await asyncio.sleep(self._settings.poll_interval_s)
        finally:
            http.close()
            await resolver.close()

    async def _round(self, http: WebhookHttp) -> int:
        lease = self._settings.timeout_s * 3 + 30
        try:
            batch = await webhook_store.claim(self._pool, self._settings.batch, lease)
            if batch:
                results = await asyncio.gather(*(self._send(http, d) for d in batch))
                await self._record(batch, results)
        except TRANSIENT as exc:  # unrecorded attempts are made again when the lease ends
            raise_if_cancelling()
            log.warning("outbox unreachable: %r", exc)
            return 0
        return len(batch)

    async def _send(self, http: WebhookHttp, delivery: Delivery) -> str | None:
        """None when the receiver took it (2xx), else why not. SSRF: the URL is checked
        again (it may predate the check or the config; a literal address skips the
        resolver), a name's addresses by the resolver, and no redirect is followed."""
        refusal = self._refusal(delivery.url)
        if refusal is not None:
            return f"refused: {refusal}"
        body = delivery.payload.encode()
        signed = headers(delivery.secret, f"evt_{delivery.id}", int(time.time()), body)
        async with self._limit:
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
