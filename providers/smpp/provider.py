"""The SMPP provider: ``providers.base.Provider`` over aiosmpplib binds.

Theory of operation
-------------------
One account is one transceiver bind, or a transmitter and a receiver bind; each bind is
one aiosmpplib ESME (``SmppClient``), which connects, binds, keeps the link alive with
enquire_link, answers the SMSC and reconnects with jittered backoff by itself.

Submitting. ``submit`` encodes the text into parts (``providers.encoding``: GSM-7 or
UCS-2, a concatenation UDH when there are several) and builds each part's submit_sm body
at once. Parts go one after another: each is put in the ``Outbox`` with a future and
awaited. The transmitting ESME's sender loop dequeues parts from the outbox (its broker)
and awaits the outbox again (its rate limiter) before each write; that is where the window
is held: at most ``window`` submit_sm are unanswered on the bind. The hook registers each
request by sequence number in our ``SequenceCorrelator`` just before the write; the
submit_sm_resp (or generic_nack) is matched there and settles the part's future with
``(command_status, message_id)``. ``status.status_error`` turns a refusal into a
temporary or permanent ``ProviderError``. If a part fails, ``submit`` raises at once: the
parts before it were already taken by the SMSC, the ones after it are never sent.

Failing fast. Parts end exactly once, through ``Outbox.settle``: on their answer, on a
send error, when the sweeper (at most once a second) finds them older than
``response_timeout``, when the transmitting bind drops (every queued and unanswered part
fails with ``smpp_link_lost`` at once, and the window shuts until the next bind), or on
``close``.

Receiving. deliver_sm reaches ``deliver`` as raw octets on the receive loop, which must
not block: a receipt is parsed (``providers.receipts``) and handed to the receipt sink,
anything else goes to ``on_inbound`` as an ``InboundPart`` (or is counted and dropped).
Receipts are not matched to submissions here: the gateway does that by provider id, so a
receipt that overtakes its submit_sm_resp is no problem. The ESME acknowledges each
deliver_sm after ``deliver`` returns, also one that cannot be parsed or whose sink raised
(logged and counted): refusing it would only make the SMSC send it again and again.

Shutdown (``close``): stop taking submissions; wait up to ``close_timeout`` for what is in
flight; unbind each bind (again within ``close_timeout``), which fails what is still
unanswered with ``smpp_closing``; drop the connection and end the ESME; stop the sweeper.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from aiosmpplib import AbstractBroker, BindMode, SmppMessage, SmppSessionState

from providers.backoff import backoff_delay
from providers.base import (
    Ack,
    ProviderError,
    ProviderPermanentError,
    ProviderTemporaryError,
    ReceiptSink,
    Submission,
    SubmitResult,
)
from providers.encoding import TooManyParts, encode_parts
from providers.receipts import is_receipt, receipt_from_deliver_sm
from providers.smpp._log import LOG, _mask
from providers.smpp.client import SmppClient
from providers.smpp.outbox import OutboundPart, Outbox, Outcome
from providers.smpp.pdu import (
    InboundPart,
    absolute_time,
    parse_deliver_sm,
    submit_sm_body,
    submit_sm_head,
)
from providers.smpp.settings import SmppSettings, destination_address, source_address
from providers.smpp.status import (
    BAD_ADDRESS,
    CLOSING,
    ESME_ROK,
    LINK_LOST,
    NOT_BOUND,
    SEND_FAILED,
    TIMEOUT,
    TOO_MANY_PARTS,
    status_error,
    temporary,
)

InboundSink = Callable[[InboundPart], None]
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
        self._outbox = Outbox(settings.window)
        self._rx_broker = _NothingToSend()
        self._clients = self._make_clients()
        self._tx = self._clients[0]
        self._accepting = False
        self._sweeper: asyncio.Task[None] | None = None
        self.dropped_inbound = 0  # MO parts with no on_inbound, and receipts without an id
        self.malformed_deliver_sm = 0

    def _make_clients(self) -> tuple[SmppClient, ...]:
        s, outbox = self._settings, self._outbox
        if s.bind_mode == "transceiver":
            return (SmppClient(s, BindMode.TRANSCEIVER, outbox, outbox, self),)
        return (
            SmppClient(s, BindMode.TRANSMITTER, outbox, outbox, self),
            SmppClient(s, BindMode.RECEIVER, self._rx_broker, None, self),
        )

    # Provider

    @property
    def ready(self) -> bool:
        """Accepting and the transmitting bind is up (receipts wait at the SMSC meanwhile)."""
        return self._accepting and self._tx.bound

    def capacity(self) -> int:
        return self._outbox.free if self.ready else 0

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name=f"smpp {self.name} sweep")
        try:
            for client in self._clients:
                await client.open(self._settings.connect_timeout)
        except BaseException:
            await self._shut_down()
            raise
        self._accepting = True

    async def close(self) -> None:
        self._accepting = False
        timeout = self._settings.close_timeout
        try:
            await asyncio.wait_for(self._outbox.wait_idle(), timeout)
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

    @property
    def in_flight(self) -> int:
        return self._outbox.in_flight

    # Submitting

    def _bodies(self, submission: Submission) -> list[bytes]:
        s = self._settings
        try:
            parts = encode_parts(submission.text, submission.message_id, s.max_parts)
        except TooManyParts as exc:
            raise ProviderPermanentError(TOO_MANY_PARTS, str(exc)) from None
        try:
            source = source_address(submission.source, s.short_code_max_digits)
            head = submit_sm_head(
                s.service_type, source, destination_address(submission.destination)
            )
        except ValueError as exc:
            raise ProviderPermanentError(BAD_ADDRESS, str(exc)) from None
        validity = absolute_time(submission.expires_at) if submission.expires_at else ""
        receipt = int(s.registered_delivery and submission.want_receipt)
        return [
            submit_sm_body(head, p.esm_class, p.data_coding, p.short_message, validity, receipt)
            for p in parts
        ]

    async def _send(self, body: bytes, submission: Submission) -> str:
        if not self.ready:
            raise self._unavailable()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._outbox.put(OutboundPart(body, future))
        status, provider_id = await future
        if status != ESME_ROK:
            raise self._refused(submission, status)
        return provider_id

    def _unavailable(self) -> ProviderTemporaryError:
        if not self._accepting:
            return temporary(CLOSING, f"{self.name} is not open")
        return temporary(NOT_BOUND, f"{self.name} is not bound", self._settings.reconnect_min)

    def _refused(self, submission: Submission, status: int) -> ProviderError:
        error = status_error(status)
        level = logging.INFO if isinstance(error, ProviderPermanentError) else logging.DEBUG
        LOG.log(
            level,
            "%s: message %d to %s refused: %s",
            self.name,
            submission.message_id,
            _mask(submission.destination),
            error,
        )
        return error

    # ClientEvents: called by the ESMEs on their own tasks; each returns at once.

    def state_changed(self, client: SmppClient, state: SmppSessionState) -> None:
        if client is not self._tx:
            self._rx_broker.link(up=client.bound)
        if client.bound:
            LOG.info("%s: bound", client.label)
            if client is self._tx:
                self._outbox.open()
        elif state is SmppSessionState.CLOSED:
            failed = self._fail_unanswered(client.label) if client is self._tx else 0
            level = logging.WARNING if failed else logging.INFO
            LOG.log(level, "%s: not bound; %d parts failed", client.label, failed)

    def _fail_unanswered(self, label: str) -> int:
        code = LINK_LOST if self._accepting else CLOSING
        retry_after = self._settings.reconnect_min
        return self._outbox.fail_all(lambda: temporary(code, f"{label} unbound", retry_after))

    def answered(self, part: OutboundPart, outcome: Outcome) -> None:
        self._outbox.settle(part, outcome)

    def send_failed(self, part: OutboundPart, error: Exception) -> None:
        self._outbox.settle(part, temporary(SEND_FAILED, error.__class__.__name__))

    def deliver(self, pdu: bytes) -> Ack | None:
        """Route one deliver_sm; a returned future defers its deliver_sm_resp until durable."""
        try:
            deliver_sm = parse_deliver_sm(pdu)
        except ValueError as exc:
            self.malformed_deliver_sm += 1
            LOG.warning("%s: malformed deliver_sm acknowledged and dropped: %s", self.name, exc)
            return None
        part = deliver_sm.part
        receipt = receipt_from_deliver_sm(
            self.name, part.esm_class, part.short_message, deliver_sm.tlvs
        )
        if receipt is not None:
            return _call(self._on_receipt, receipt)
        if self._on_inbound is not None and not is_receipt(part.esm_class):
            _call(self._on_inbound, part)
        else:
            self.dropped_inbound += 1
        return None

    # Expiry and shutdown

    async def _sweep_forever(self) -> None:
        timeout = self._settings.response_timeout
        while True:
            await asyncio.sleep(min(1.0, timeout))
            for client in self._clients:
                for request in client.requests.sweep():
                    if isinstance(request, OutboundPart):
                        overdue = temporary(TIMEOUT, f"no submit_sm_resp within {timeout:g} s")
                        self._outbox.settle(request, overdue)

    async def _shut_down(self) -> None:
        self._accepting = False
        for client in self._clients:
            await client.close(self._settings.close_timeout)
        self._outbox.fail_all(lambda: temporary(CLOSING, f"{self.name} closed"))
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait({self._sweeper})
            self._sweeper = None


class _NothingToSend(AbstractBroker):  # type: ignore[misc]
    """The receiver bind's broker: ESME runs a sender loop on every bind; this one idles.

    When the bind drops, ``dequeue`` raises to end that loop at once (ESME would otherwise
    give it 0.5 s before cancelling it).
    """

    def __init__(self) -> None:
        self._down = asyncio.Event()

    def link(self, up: bool) -> None:
        if up:
            self._down.clear()
        else:
            self._down.set()

    async def enqueue(self, message: SmppMessage) -> None:
        raise TypeError("a receiver bind sends nothing")

    async def dequeue(self) -> SmppMessage:
        await self._down.wait()
        raise ConnectionAbortedError("the bind is down")


def _call(sink: Callable[[_T], _R], item: _T) -> _R | None:
    """A sink's bug must not stop the receive loop (which would drop the bind)."""
    try:
        return sink(item)
    except Exception:
        LOG.exception("receipt/inbound sink failed; the item is lost")
        return None
