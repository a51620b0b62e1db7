"""The SMPP provider: ``providers.base.Provider`` over a pool of aiosmpplib binds.

Theory of operation
-------------------
One account is ``binds`` binds (``providers.smpp.bind``): each a transceiver, or a
transmitter with its own receiver, each one aiosmpplib ESME (``SmppClient``) per
connection, which connects, binds, keeps the link alive with enquire_link, answers the
SMSC and reconnects with jittered backoff by itself. Each bind has its own ``Outbox``: its
adaptive window (``providers.aimd``) of unanswered submit_sm, which is never exceeded.

Submitting. ``submit`` encodes the text into parts and builds each part's submit_sm body
at once (``_bodies``). Parts go one after another: each goes to the bind that is up and
least loaded relative to its window (a paused bind last), is put in its outbox with a
future and awaited. The ESME's sender loop dequeues it (the outbox is its broker), awaits
the outbox again (its rate limiter: the window and the pause) and writes it; the hook
registers it by sequence number in that client's ``SequenceCorrelator``; the
submit_sm_resp (or generic_nack) settles the future with ``(command_status, message_id)``.

Refusals. ESME_RTHROTTLED / ESME_RMSGQFUL cut that bind's window and pause it (the bind
does that); the part is sent again here, up to ``throttle_retries`` times, before it
becomes a ``ProviderTemporaryError`` with the status's ``retry_after``: a momentary
throttle costs no database round trip. Other statuses become temporary or permanent
errors by ``status.status_error`` (the SMPP code and name kept). If a part fails,
``submit`` raises at once: the parts before it were already taken by the SMSC, the ones
after it are never sent; a later part refused for now is retried a few times first.

Failing fast. Parts end exactly once, through ``Outbox.settle``: on their answer, on a
send error, when the sweeper (at most once a second) finds them older than
``response_timeout`` (that bind is then cut and reconnects), when their bind drops (its
queued and unanswered parts fail with ``smpp_link_lost`` at once; other binds go on), or
on ``close``.

Receiving. deliver_sm reaches ``deliver`` as raw octets on a receive loop, which must not
block: a receipt is parsed (``providers.receipts``) and handed to the receipt sink,
anything else goes to ``on_inbound`` as a ``providers.base.InboundPart`` (or is counted
and dropped). Either sink may return a future: the deliver_sm_resp then waits for it, so
that the SMSC redelivers what was never stored. Receipts are not matched to submissions
here: the gateway does that by provider id, so a receipt that overtakes its submit_sm_resp,
or comes on another bind, is no problem. A deliver_sm that cannot be parsed, or whose sink
raised, is acknowledged (logged and counted): refusing it would only bring it back. Other
malformed PDUs end their session (``client``); both count in ``malformed_pdus``.

Shutdown (``close``): stop taking submissions; wait up to ``close_timeout`` for what is in
flight; unbind each bind (again within ``close_timeout``), which fails what is still
unanswered with ``smpp_closing``; drop the connections and end the ESMEs; stop the sweeper.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from providers.backoff import backoff_delay
from providers.base import (
    Ack,
    InboundPart,
    InboundSink,
    ProviderError,
    ProviderPermanentError,
    ProviderSnapshot,
    ProviderTemporaryError,
    ReceiptSink,
    Submission,
    SubmitResult,
)
from providers.masking import mask_phone
from providers.receipts import is_receipt, receipt_from_deliver_sm
from providers.smpp._log import LOG
from providers.smpp.bind import THROTTLING, Bind
from providers.smpp.outbox import OutboundPart, Outcome
from providers.smpp.pdu import DeliverSm, parse_deliver_sm
from providers.smpp.segments import BodyBuilder
from providers.smpp.settings import SmppSettings
from providers.smpp.status import (
    CLOSING,
    ESME_ROK,
    NOT_BOUND,
    status_error,
    temporary,
)

_T = TypeVar("_T")
_R = TypeVar("_R")
_PART_RETRIES = 5


class SmppProvider:
    """An SMPP account; see the module docstring for how it works."""

    def __init__(
        self,
        settings: SmppSettings,
        on_receipt: ReceiptSink,
        on_inbound: InboundSink | None = None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._on_receipt = on_receipt
        self._on_inbound = on_inbound
        self._binds = tuple(Bind(settings, n, self) for n in range(settings.binds))
        self._builder = BodyBuilder(settings)
        self._accepting = False
        self._sweeper: asyncio.Task[None] | None = None
        self.dropped_inbound = 0  # MO parts with no on_inbound, and receipts without an id
        self.malformed_deliver_sm = 0

    # Provider

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def ready(self) -> bool:
        """Accepting and a transmitting bind is up (receipts wait at the SMSC meanwhile)."""
        if self._accepting:  # a loop, not any(): the router asks this for every message
            for bind in self._binds:
                if bind.up:
                    return True
        return False

    def capacity(self) -> int:
        free = 0
        if self._accepting:
            for bind in self._binds:
                if bind.up:
                    free += bind.outbox.free
        return free

    @property
    def in_flight(self) -> int:
        return sum(bind.outbox.in_flight for bind in self._binds)

    def snapshot(self) -> ProviderSnapshot:
        binds = self._binds
        up = [bind for bind in binds if bind.up]
        return ProviderSnapshot(
            name=self.name,
            kind="smpp",
            ready=self.ready,
            binds_up=len(up),
            binds_total=len(binds),
            in_flight=self.in_flight,
            window=sum(bind.outbox.window for bind in up),
            window_max=self._settings.window * len(binds),
            submitted=sum(bind.submitted for bind in binds),
            throttled=sum(bind.throttled for bind in binds),
            errors=sum(bind.errors for bind in binds),
            malformed_pdus=self.malformed_deliver_sm + sum(b.malformed_pdus for b in binds),
            binds=tuple(bind.state() for bind in binds),
        )

    async def start(self) -> None:
        """Bind every bind at once; ready when one is up, and the rest keep trying."""
        self._sweeper = asyncio.create_task(self._sweep_forever(), name=f"smpp {self.name} sweep")
        try:
            outcomes = await asyncio.gather(
                *(bind.open() for bind in self._binds), return_exceptions=True
            )
        except asyncio.CancelledError:
            # A caller's deadline (the gateway's first-bind wait): what was launched must
            # stop, or the retried start runs a second ESME over the same connection.
            await asyncio.shield(self._shut_down())
            raise
        failures = [error for error in outcomes if isinstance(error, BaseException)]
        fatal = next((e for e in failures if not isinstance(e, ProviderTemporaryError)), None)
        if fatal is not None or len(failures) == len(self._binds):
            await self._shut_down()
            raise fatal or failures[0]
        for bind, outcome in zip(self._binds, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                LOG.warning("%s: no bind at start (%s); retrying", bind.label, outcome)
                bind.relaunch()
        self._accepting = True

    async def close(self) -> None:
        self._accepting = False
        timeout = self._settings.close_timeout
        idle = [bind.outbox.wait_idle() for bind in self._binds]
        try:
            await asyncio.wait_for(asyncio.gather(*idle), timeout)
        except TimeoutError:
            LOG.warning("%s: %d parts unanswered after %g s", self.name, self.in_flight, timeout)
        await self._shut_down()

    async def submit(self, submission: Submission) -> SubmitResult:
        bodies = self._bodies(submission)
        part_ids: list[str] = []
        for body in bodies:
            if part_ids:
                part_ids.append(await self._send_later_part(body, submission))
            else:
                part_ids.append(await self._send(body, submission))
        return SubmitResult(submission.message_id, tuple(part_ids))

    async def _send_later_part(self, body: bytes, submission: Submission) -> str:
        """Once a part has gone, a temporary refusal of a later one is retried here, a few
        times: sending the whole message again would deliver its first parts twice."""
        for attempt in range(_PART_RETRIES):
            try:
                return await self._send(body, submission)
            except ProviderTemporaryError as exc:
                await asyncio.sleep(max(exc.retry_after, backoff_delay(attempt, 0.2, 5.0)))
        return await self._send(body, submission)

    # Submitting

    def _bodies(self, submission: Submission) -> list[bytes]:
        """The submit_sm bodies as this account carries them (``segments``); raises
        ``ProviderPermanentError`` on too many parts or an address SMPP cannot carry."""
        return self._builder.bodies(submission)

    async def _send(self, body: bytes, submission: Submission) -> str:
        """Send one part; a throttled one again (its bind paused meanwhile), a few times."""
        retries = self._settings.throttle_retries
        for attempt in range(retries + 1):
            status, provider_id = await self._send_once(body)
            if status == ESME_ROK:
                return provider_id
            if status not in THROTTLING or attempt == retries:
                break
        raise self._refused(submission, status)

    async def _send_once(self, body: bytes) -> Outcome:
        bind = self._pick()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        bind.outbox.put(OutboundPart(body, future))
        return await future

    def _pick(self) -> Bind:
        """The bind that is up and least loaded relative to its window."""
        if not self._accepting:
            raise temporary(CLOSING, f"{self.name} is not open")
        best, lightest = None, math.inf
        for bind in self._binds:
            if bind.up and (load := bind.outbox.load) < lightest:
                best, lightest = bind, load
        if best is None:
            raise temporary(NOT_BOUND, f"{self.name} is not bound", self._settings.reconnect_min)
        return best

    def reroute(self, parts: list[OutboundPart], error: Callable[[], ProviderError]) -> None:
        """Parts a lost bind never wrote: to the binds still up, or failed if there are none."""
        up = [bind for bind in self._binds if bind.up] if self._accepting else []
        for part in parts:
            if up:
                min(up, key=lambda bind: bind.outbox.load).outbox.put(part)
            elif not part.future.done():
                part.future.set_exception(error())

    def _refused(self, submission: Submission, status: int) -> ProviderError:
        error = status_error(status)
        level = logging.INFO if isinstance(error, ProviderPermanentError) else logging.DEBUG
        LOG.log(
            level,
            "%s: message %d to %s refused: %s",
            self.name,
            submission.message_id,
            mask_phone(submission.destination),
            error,
        )
        return error

    # Receiving: called by the binds' receive loops; returns at once.

    def deliver(self, pdu: bytes) -> Ack | None:
        """Route one deliver_sm; a returned future defers its deliver_sm_resp until durable."""
        try:
            deliver_sm = parse_deliver_sm(pdu)
        except ValueError as exc:
            self.malformed_deliver_sm += 1
            LOG.warning("%s: malformed deliver_sm acknowledged and dropped: %s", self.name, exc)
            return None
        receipt = receipt_from_deliver_sm(
            self.name, deliver_sm.esm_class, deliver_sm.short_message, deliver_sm.tlvs
        )
        if receipt is not None:
            return _call(self._on_receipt, receipt)
        if self._on_inbound is not None and not is_receipt(deliver_sm.esm_class):
            return _call(self._on_inbound, self._inbound_part(deliver_sm))
        self.dropped_inbound += 1
        return None

    def _inbound_part(self, deliver_sm: DeliverSm) -> InboundPart:
        return InboundPart(
            provider=self.name,
            source=deliver_sm.source,
            destination=deliver_sm.destination,
            data_coding=deliver_sm.data_coding,
            esm_class=deliver_sm.esm_class,
            short_message=deliver_sm.short_message,
            sar=deliver_sm.sar,
            received_at=datetime.now(UTC),
        )

    # Expiry and shutdown

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._settings.response_timeout))
            for bind in self._binds:
                bind.sweep()

    async def _shut_down(self) -> None:
        self._accepting = False
        await asyncio.gather(*(bind.close() for bind in self._binds))
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait({self._sweeper})
            self._sweeper = None


def _call(sink: Callable[[_T], _R], item: _T) -> _R | None:
    """A sink's bug must not stop the receive loop (which would drop the bind)."""
    try:
        return sink(item)
    except Exception:
        LOG.exception("receipt/inbound sink failed; the item is lost")
        return None
