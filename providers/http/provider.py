"""The HTTP provider: ``providers.base.Provider`` over one aiohttp session per account.

Theory of operation
-------------------
Everything the dialect decides is pure (``render``, ``parse``); this module only moves
bytes. ``submit`` renders the request first (a bad message fails before it takes a slot),
then waits for a slot of the window: a semaphore of ``concurrency``, which the dispatcher
normally never waits on because ``capacity()`` tells it the room left. The session's
connector allows ``concurrency + poll_concurrency`` connections, so polling never takes a
submission's slot. One request is one message and gets one provider id, so
``SubmitResult.part_ids`` is a 1-tuple: the provider splits long texts itself.

Failures. A network error or timeout is temporary (the provider may have taken the
message: a retry can duplicate it, as invariant 3 allows for the in-flight window);
``parse.parse_answer`` maps answers (5xx/429 temporary with ``Retry-After``, other 4xx
permanent with the provider's code, garbage temporary).

Receipts arrive three ways, and the gateway matches every one by provider id:
``callback()`` verifies and parses a webhook (``POST /v1/receipts/{name}``; the caller
answers 2xx once the result is durable; ``handle_callback()`` does that through the
sinks); ``reports`` polling fetches the reports not yet fetched and hands them to the
receipt sink, awaiting its futures; ``per_id`` polling asks for the state of each message
still awaiting a final receipt. Those ids are kept in memory only (bounded by
``max_awaiting``, oldest dropped first, lost on restart): webhooks are the primary path and
polling the fallback.

Shutdown (``close``): stop taking submissions; wait up to ``close_timeout`` for those in
flight; stop polling; close the session (what is still in flight fails, temporarily).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp
from yarl import URL

from providers.base import (
    Ack,
    InboundSink,
    ProviderError,
    ProviderPermanentError,
    ProviderSnapshot,
    ProviderTemporaryError,
    Receipt,
    ReceiptSink,
    Submission,
    SubmitResult,
)
from providers.http.parse import (
    Callback,
    CallbackRejected,
    accept_callback,
    parse_answer,
    report,
    report_items,
    retry_after_seconds,
)
from providers.http.render import HttpRequest, render_poll, render_submit
from providers.http.settings import HttpSettings, resolve_dialect
from providers.http.spec import ReportSpec
from providers.masking import mask_phone, scrub

LOG = logging.getLogger("gateway.http")
CLOSING = "http_closing"
NETWORK = "http_network"
TIMEOUT = "http_timeout"
UNKNOWN_ID = "http_status:404"
POLL_BATCH = 200  # per-id polls per round: a fallback must not flood the provider
REPORT_ROUNDS = 10  # report pages fetched back to back before waiting for the next round
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass
class HttpStats:
    """Counters since start; ``errors`` counts every refusal, ``throttled`` the 429s among them."""

    submitted: int = 0
    throttled: int = 0
    errors: int = 0
    callbacks: int = 0
    callbacks_rejected: int = 0
    callback_items_skipped: int = 0
    receipts_polled: int = 0
    poll_errors: int = 0
    awaiting_dropped: int = 0


class HttpProvider:
    """An HTTP SMS account; see the module docstring for how it works."""

    def __init__(
        self,
        settings: HttpSettings,
        on_receipt: ReceiptSink,
        on_inbound: InboundSink | None = None,
    ) -> None:
        self.name = settings.name
        self.stats = HttpStats()
        self._settings = settings
        self._dialect = resolve_dialect(settings)
        self._account = settings.account_values()
        self._secret = settings.callback_secret(self._dialect)
        self._on_receipt = on_receipt
        self._on_inbound = on_inbound
        self._window = asyncio.Semaphore(settings.concurrency)
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None
        self._accepting = False
        self._poller: asyncio.Task[None] | None = None
        self._awaiting: OrderedDict[str, None] = OrderedDict()
        self._track_ids = self._polling and self._dialect.poll.mode == "per_id"

    # Provider

    @property
    def ready(self) -> bool:
        return self._accepting and self._session is not None and not self._session.closed

    def capacity(self) -> int:
        return max(0, self._settings.concurrency - self._in_flight) if self.ready else 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def start(self) -> None:
        """Open the session; HTTP has no bind, so bad credentials show on the first submit."""
        s = self._settings
        connector = aiohttp.TCPConnector(limit=s.concurrency + s.poll_concurrency)
        timeout = aiohttp.ClientTimeout(total=s.request_timeout, sock_connect=s.connect_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),  # an API has no cookies; the jar costs CPU
        )
        if self._polling:
            self._poller = asyncio.create_task(self._poll_forever(), name=f"http {self.name} poll")
        self._accepting = True

    async def close(self) -> None:
        self._accepting = False
        timeout = self._settings.close_timeout
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            LOG.warning("%s: %d requests unanswered after %g s", self.name, self.in_flight, timeout)
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.wait({self._poller})
            self._poller = None
        if self._session is not None:
            await self._session.close()

    async def submit(self, submission: Submission) -> SubmitResult:
        if not self.ready:
            raise ProviderTemporaryError(CLOSING, f"{self.name} is not open")
        request = render_submit(self._dialect, self._account, submission)
        self._enter()
        try:
            async with self._window:
                provider_id = await self._send(request)
        except ProviderError as exc:
            self._refused(submission, exc)
            raise
        finally:
            self._leave()
        self.stats.submitted += 1
        if self._track_ids and submission.want_receipt:
            self._await_receipt(provider_id)
        return SubmitResult(submission.message_id, (provider_id,))

    def snapshot(self) -> ProviderSnapshot:
        s, ready = self._settings, self.ready
        bind = {
            "label": self.name,
            "up": ready,
            "in_flight": self._in_flight,
            "window": s.concurrency,
            "awaiting_receipt": len(self._awaiting),
        }
        return ProviderSnapshot(
            name=self.name,
            kind="http",
            ready=ready,
            binds_up=int(ready),
            binds_total=1,
            in_flight=self._in_flight,
            window=s.concurrency if ready else 0,
            window_max=s.concurrency,
            submitted=self.stats.submitted,
            throttled=self.stats.throttled,
            errors=self.stats.errors,
            binds=({**bind, **asdict(self.stats)},),
        )

    # Callbacks

    def callback(self, headers: Mapping[str, str], body: bytes, url: str) -> Callback:
        """Verify and parse one webhook; raises ``CallbackRejected`` (401, 400).

        ``url`` is the URL the request came to; a URL-signed dialect is checked against
        ``callback_url`` when that is set (what the provider was told, whatever proxies
        did to the request on its way).
        """
        lowered = {key.lower(): value for key, value in headers.items()}
        signed_url = self._settings.callback_url or url
        try:
            result = accept_callback(
                self._dialect.callback, self._secret, self.name, lowered, body, signed_url
            )
        except CallbackRejected as exc:
            self.stats.callbacks_rejected += 1
            LOG.warning("%s: callback refused (%d): %s", self.name, exc.status, exc.reason)
            raise
        self.stats.callbacks += 1
        self.stats.callback_items_skipped += result.skipped
        self._forget(r.provider_message_id for r in result.receipts if r.status.is_final)
        return result

    async def handle_callback(self, headers: Mapping[str, str], body: bytes, url: str) -> Callback:
        """``callback``, then every item to the sinks; returns once they are durable."""
        result = self.callback(headers, body, url)
        acks = [_call(self._on_receipt, r) for r in result.receipts]
        if self._on_inbound is not None:
            acks += [_call(self._on_inbound, p) for p in result.inbound]
        pending = [ack for ack in acks if ack is not None]
        if pending:
            await asyncio.gather(*pending)
        return result

    # Sending

    def _enter(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def _send(self, request: HttpRequest) -> str:
        status, headers, body = await self._fetch(request)
        if status == 429:
            self.stats.throttled += 1
        retry_after = retry_after_seconds(headers.get("Retry-After"), datetime.now(UTC))
        return parse_answer(self._dialect.response, status, body, retry_after)

    async def _fetch(self, request: HttpRequest) -> tuple[int, Mapping[str, str], bytes]:
        session = self._session
        if session is None or session.closed:
            raise ProviderTemporaryError(CLOSING, f"{self.name} is closed")
        url = URL(request.url, encoded=True)  # sent as rendered, not re-quoted
        try:
            async with session.request(
                request.method, url, headers=request.headers, data=request.body
            ) as response:
                return response.status, response.headers, await response.read()
        except TimeoutError:
            raise ProviderTemporaryError(TIMEOUT, "no answer in time") from None
        except aiohttp.ClientError as exc:
            raise ProviderTemporaryError(NETWORK, exc.__class__.__name__) from None

    def _refused(self, submission: Submission, error: ProviderError) -> None:
        permanent = isinstance(error, ProviderPermanentError)
        self.stats.errors += 1
        LOG.log(
            logging.INFO if permanent else logging.DEBUG,
            "%s: message %d to %s refused: %s",
            self.name,
            submission.message_id,
            mask_phone(submission.destination),
            scrub(str(error)),  # a provider's error may quote the number
        )

    # Polling

    @property
    def _polling(self) -> bool:
        return self._settings.poll_interval is not None and self._dialect.poll.mode != "none"

    def _await_receipt(self, provider_id: str) -> None:
        self._awaiting[provider_id] = None
        if len(self._awaiting) > self._settings.max_awaiting:
            self._awaiting.popitem(last=False)
            self.stats.awaiting_dropped += 1

    def _forget(self, provider_ids: Iterable[str]) -> None:
        for provider_id in provider_ids:
            self._awaiting.pop(provider_id, None)

    async def _poll_forever(self) -> None:
        interval = self._settings.poll_interval or 1.0
        poll = self._poll_reports if self._dialect.poll.mode == "reports" else self._poll_ids
        while True:
            await asyncio.sleep(interval)
            try:
                await poll()
            except (ProviderError, ValueError) as exc:
                self.stats.poll_errors += 1
                LOG.warning("%s: receipt polling failed: %s", self.name, exc)
            except Exception:
                self.stats.poll_errors += 1
                LOG.exception("%s: receipt polling failed", self.name)

    async def _poll_reports(self) -> None:
        """Fetch pages until one comes back empty (each report is returned once)."""
        poll = self._dialect.poll
        for _ in range(REPORT_ROUNDS):
            body = await self._get(render_poll(self._dialect, self._account))
            items = report_items(poll.items, body)
            found = [report(self._report_spec, self.name, item) for item in items]
            receipts = [r for r in found if r is not None]
            self._forget(r.provider_message_id for r in receipts if r.status.is_final)
            await self._hand_over(receipts)
            if not items:
                return

    async def _poll_ids(self) -> None:
        batch = list(self._awaiting)[:POLL_BATCH]
        limit = asyncio.Semaphore(self._settings.poll_concurrency)
        await asyncio.gather(*(self._poll_id(provider_id, limit) for provider_id in batch))

    async def _poll_id(self, provider_id: str, limit: asyncio.Semaphore) -> None:
        async with limit:
            try:
                body = await self._get(render_poll(self._dialect, self._account, provider_id))
                [item] = report_items(self._dialect.poll.items, body)
            except (ProviderError, ValueError) as exc:
                self.stats.poll_errors += 1
                LOG.debug("%s: polling one id failed: %s", self.name, exc)
                if isinstance(exc, ProviderError) and exc.code == UNKNOWN_ID:
                    self._forget([provider_id])  # the provider does not know it: stop asking
                return
        found = report(self._report_spec, self.name, item)
        if found is None or not found.status.is_final:
            if provider_id in self._awaiting:
                self._awaiting.move_to_end(provider_id)
            return
        await self._hand_over([found])
        self._forget([provider_id])

    @property
    def _report_spec(self) -> ReportSpec:
        spec = self._dialect.poll.receipt
        assert spec is not None, "PollSpec checks that a polling dialect has one"
        return spec

    async def _get(self, request: HttpRequest) -> bytes:
        status, _, body = await self._fetch(request)
        if not 200 <= status < 300:
            raise ProviderTemporaryError(f"http_status:{status}", "receipt poll refused")
        return body

    async def _hand_over(self, receipts: list[Receipt]) -> None:
        """To the sink; returns once every receipt is durable (or its ack failed, logged)."""
        self.stats.receipts_polled += len(receipts)
        acks = [ack for ack in (_call(self._on_receipt, r) for r in receipts) if ack is not None]
        for result in await asyncio.gather(*acks, return_exceptions=True):
            if isinstance(result, BaseException):
                LOG.error("%s: a polled receipt was not stored: %r", self.name, result)


def _call(sink: Callable[[_T], Ack | None], item: _T) -> Ack | None:
    """A sink's bug must not stop the poller or fail the whole callback."""
    try:
        return sink(item)
    except Exception:
        LOG.exception("%s sink failed; the item is lost", type(item).__name__)
        return None
