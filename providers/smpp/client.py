"""aiosmpplib's ESME with its hot paths replaced and its loose ends tied.

aiosmpplib stays the SMPP client: it connects, binds, runs the sender loop over our
``Outbox``, answers enquire_link and deliver_sm, keeps the link alive, unbinds and
reconnects. ``SmppClient`` overrides only these, each for a measured or observed reason:

- ``_session_state`` is a property. ESME assigns it at every transition but tells nobody;
  the provider must learn at once that a bind dropped, to fail what was in flight.
- On OPEN, TCP_NODELAY is set (Nagle held back Jasmin's small SMPP writes and cost it most
  of its speed). On CLOSED, the transport is closed: ESME never closes it and leaves one
  open socket behind per reconnect (half-open after an unbind).
- ``connect`` reports a refused bind, so that ``start()`` can fail on bad credentials
  instead of retrying them forever.
- ``_get_pdu`` reads the header leniently: ESME's ``SmppCommandStatus(status)`` raises on a
  vendor status (0x400…) and would drop the bind on the first such submit_sm_resp. It is
  strict where ESME is not: a PDU that ``pdu.read_header`` / ``pdu.check_pdu`` refuses (a
  command_length out of range, an unknown command_id, a garbage message_id) is answered
  with generic_nack, reported (``ClientEvents.malformed``) and ends the session as a
  ``MalformedPdu``, a ``ValueError``: the one kind of read error that ESME's ``start``
  catches and reconnects after (anything else would end the ESME for good).
- ``_receive_data`` frames every PDU of a read from one buffer and takes submit_sm_resp
  and generic_nack straight to our correlator (ESME's path builds dataclasses, runs a
  throttle handler and stores receipt correlation that the gateway does itself) and each
  deliver_sm over as raw octets (ESME's decoding and receipt parsing cost ~43 µs a
  receipt), without an await; other PDUs take ESME's own path. It checks every header
  as ``_get_pdu`` does (which still reads the bind response).
- ``_dequeue_messages`` and ``_send_data`` send a part without ESME's per-PDU steps that
  our parts never need (splitting, encoding, a throttle handler, a lock and a drain per
  PDU): the writer is drained only when the kernel holds bytes back or the link is cut.
- The writer is a ``CorkedWriter``: ESME writes each PDU with its own send() syscall;
  corking the writes of one loop iteration took a submit_sm from ~51 to ~25 µs of CPU.

Measured with ``python -m providers.smpp._bench --mode submit+receipt --window 500``: the
receive loop, the sender path and the receipt parsing above took the provider from ~56 to
~28 µs of CPU per message (submit, answer, receipt and its deliver_sm_resp).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from asyncio import StreamReader, StreamWriter
from collections.abc import Awaitable
from functools import partial
from typing import Any, Final, Protocol

from aiosmpplib import (
    ESME,
    AbstractHook,
    AbstractRetryTimer,
    AbstractThrottleHandler,
    BindMode,
    PduHeader,
    SmppCommand,
    SmppCommandStatus,
    SmppError,
    SmppMessage,
    SmppSessionState,
)
from aiosmpplib.protocol import MESSAGE_TYPE_MAP
from aiosmpplib.state import COMMAND_RESPONSE_MAP

from providers.backoff import backoff_delay
from providers.base import Ack, ProviderPermanentError
from providers.smpp._log import LOG, LibraryLogBridge
from providers.smpp.correlator import SequenceCorrelator
from providers.smpp.outbox import OutboundPart, Outcome
from providers.smpp.pdu import (
    DELIVER_SM,
    GENERIC_NACK,
    HEADER,
    HEADER_LENGTH,
    SUBMIT_SM_RESP,
    Header,
    MalformedPdu,
    accepted_message_id,
    check_framing,
    check_pdu,
    message_id,
    read_header,
)
from providers.smpp.settings import SmppSettings
from providers.smpp.status import NOT_BOUND, status_code, status_name, temporary

_RESPONSE_BIT: Final = 0x80000000
_STATUSES: Final = {status.value: status for status in SmppCommandStatus}
_DELIVER_SM_RESP: Final = 0x80000005
_DELIVER_SM_RESP_HEAD: Final = struct.Struct(">IIII")
_READ_SIZE: Final = 1 << 16
_ANSWERS: Final = frozenset({SUBMIT_SM_RESP, GENERIC_NACK})
_RX_T_APPN: Final = 0x64  # ESME receiver temporary app error: the SMSC retries later


class ClientEvents(Protocol):
    """What one ``SmppClient`` reports to its owner; every method must return at once."""

    def state_changed(self, client: SmppClient, state: SmppSessionState) -> None: ...
    def deliver(self, pdu: bytes) -> Ack | None: ...
    def answered(self, part: OutboundPart, outcome: Outcome) -> None: ...
    def nacked(self, part: OutboundPart, status: int) -> None: ...
    def send_failed(self, part: OutboundPart, error: Exception) -> None: ...
    def malformed(self, client: SmppClient, error: MalformedPdu) -> None: ...


class SmppClient(ESME):  # type: ignore[misc]
    _reader: StreamReader | None  # ESME's own, typed here
    _writer: StreamWriter | None

    def __init__(
        self,
        settings: SmppSettings,
        mode: BindMode,
        broker: object,
        rate_limiter: object | None,
        events: ClientEvents,
        label: str,
    ) -> None:
        self._events = events
        self._state = SmppSessionState.CLOSED
        self._bound_state = mode.session_state  # a property of aiosmpplib's, asked per PDU
        self._link: StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_outcome = asyncio.Event()  # bound, or the bind refused
        self._refused: int | None = None
        self.label = f"{label}/{mode.name.lower()}"
        self.requests = SequenceCorrelator(settings.response_timeout)
        self._tls = tls_context(settings)
        super().__init__(
            smsc_host=settings.host,
            smsc_port=settings.port,
            system_id=settings.system_id,
            password=settings.password,
            system_type=settings.system_type,
            bind_mode=mode,
            client_id=self.label,
            enquire_link_interval=float(settings.enquire_link_interval),
            socket_timeout=float(settings.response_timeout),
            log_level=logging.WARNING,
            log_metadata={"bind": self.label},
            log_handler=LibraryLogBridge(self.label),
            log_include_timestamp=False,
            hook=_Hook(self.requests, events),
            broker=broker,
            rate_limiter=rate_limiter,
            throttle_handler=_NoThrottle(),
            correlator=self.requests,
            retry_timer=JitteredBackoff(settings.reconnect_min, settings.reconnect_max),
        )

    @property
    def bound(self) -> bool:
        return self._state is self._bound_state

    # ESME assigns _session_state at every transition; the property turns them into events.
    @property
    def _session_state(self) -> SmppSessionState:
        return self._state

    @_session_state.setter
    def _session_state(self, state: SmppSessionState) -> None:
        if state is self._state:
            return
        self._state = state
        if state is SmppSessionState.OPEN:
            assert self._writer is not None  # ESME sets OPEN right after connecting
            self._writer = self._link = CorkedWriter(self._writer, self._reader)
            _set_nodelay(self._link)
        elif state is SmppSessionState.CLOSED:
            self._close_link()  # what is already read (an unbind_resp, say) is still handled
            self._data_received.set()  # the keeper then ends now, not after ESME's 0.5 s grace
        elif self.bound:
            self._first_outcome.set()
        self._events.state_changed(self, state)

    def _close_link(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    async def _socket_operation(self, operation: Awaitable[Any]) -> Any:
        """ESME opens a plain TCP connection (it has no TLS option): with ``tls`` on, the
        one operation made while closed, the connect, is upgraded before the bind."""
        connecting = self._tls is not None and self._state is SmppSessionState.CLOSED
        result = await super()._socket_operation(operation)
        if connecting:
            _, writer = result
            await super()._socket_operation(
                writer.start_tls(self._tls, server_hostname=self.smsc_host)
            )
        return result

    async def connect(self) -> None:
        try:
            await super().connect()
        except SmppError as exc:
            self._refused = int(exc.command_status)
            self._first_outcome.set()
            raise

    def launch(self) -> None:
        """Run the ESME: it connects, binds and reconnects by itself. A client that a failed
        ``open`` closed is launched again when the provider retries its start: what that
        close left behind (the shutting-down flag, the first outcome) must not carry over,
        or the new run stops at its first failed connect and never rebinds."""
        self._is_shutting_down = False
        self._shut_down.clear()
        self._first_outcome.clear()
        self._refused = None
        self._task = asyncio.create_task(self.start(), name=f"smpp {self.label}")

    def drop(self) -> None:
        """Cut the connection now (a hung link); the ESME then reconnects after its backoff."""
        if self._link is not None:
            self._link.transport.abort()

    async def open(self, within: float) -> None:
        """Run the ESME; return once bound, or stop it and raise if the bind fails first."""
        self.launch()
        try:
            await asyncio.wait_for(self._first_outcome.wait(), within)
        except TimeoutError:
            await self.close(0.0)
            raise temporary(NOT_BOUND, f"{self.label}: no bind within {within:g} s") from None
        if self._refused is not None:
            await self.close(0.0)
            code, name = status_code(self._refused), status_name(self._refused)
            raise ProviderPermanentError(code, f"{self.label}: bind refused ({name})")

    async def close(self, within: float) -> None:
        """Unbind within ``within`` seconds if bound, then drop the connection and end the ESME."""
        task, self._task = self._task, None
        if task is None:
            return
        if self.bound:
            try:
                await asyncio.wait_for(self.stop(), within)
            except TimeoutError:
                LOG.warning("%s: no clean unbind within %g s", self.label, within)
        self._is_shutting_down = True
        self._close_link()  # so that ESME's cancellation path cannot block on a drain
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            LOG.error("%s: ESME ended with %r", self.label, task.exception())

    async def _get_pdu(self) -> tuple[bytes, PduHeader]:
        reader = self._reader
        assert reader is not None
        head = await reader.readexactly(HEADER_LENGTH)
        try:
            raw = read_header(head)
            pdu = head + await reader.readexactly(raw.length - HEADER_LENGTH)
            check_pdu(raw, pdu)
        except MalformedPdu as error:
            self._refuse(head, error)
            raise
        status = _STATUSES.get(raw.status, SmppCommandStatus.ESME_RUNKNOWNERR)
        return pdu, PduHeader(raw.length, SmppCommand(raw.command_id), status, raw.sequence)

    def _refuse(self, head: bytes, error: MalformedPdu) -> None:
        """generic_nack the PDU (§2.3: with its sequence) and report it; the raise that
        follows ends the session. The nack leaves when the link is closed."""
        if self._link is not None and not self._link.is_closing():
            sequence = int.from_bytes(head[12:16], "big")
            self._link.write(struct.pack(">IIII", 16, GENERIC_NACK, error.status, sequence))
        self._events.malformed(self, error)

    async def _dequeue_messages(self) -> None:
        """ESME's sender loop without the steps our parts never need (splitting, encoding,
        its throttle handler): a part from the outbox, through its window, to the link."""
        if self.bind_mode is BindMode.RECEIVER:
            return await super()._dequeue_messages()  # type: ignore[no-any-return]
        broker, limiter = self.broker, self.rate_limiter
        while self._receiving():
            message = await broker.dequeue()
            try:
                if limiter is not None:
                    await limiter.limit()
                await self._send_data(message)
            except Exception as error:  # as ESME: tell the hook; only a bad PDU is survivable
                await self.hook.send_error(message, error, self.client_id)
                if not isinstance(error, ValueError):
                    raise
        return None

    async def _send_data(self, smpp_message: SmppMessage) -> None:
        """A part is registered and written at once, and the writer drained only when the
        kernel holds bytes back or the link is cut (ESME took a lock and drained after every
        PDU); anything else takes ESME's path."""
        writer = self._writer
        if not isinstance(smpp_message, OutboundPart) or writer is None or not self.bound:
            return await super()._send_data(smpp_message)  # type: ignore[no-any-return]
        smpp_message.sequence_num = self.sequence_generator.next_sequence()
        self.requests.register(smpp_message)  # before the write: the answer may come at once
        writer.write(smpp_message.pdu())
        transport = writer.transport  # a cut link: drain raises, and this loop ends
        if transport.is_closing() or transport.get_write_buffer_size():
            async with self._drain_lock:
                await writer.drain()
        return None

    async def _receive_data(self) -> None:
        """ESME's receive loop, a chunk at a time: every PDU already read is framed from one
        buffer, and submit answers and deliver_sm are handled without an await (ESME awaited
        two reads, a handler and a hook per PDU). The rest takes ESME's own path."""
        reader = self._reader
        assert reader is not None
        buffer = b""
        while self._receiving():
            chunk = await reader.read(_READ_SIZE)
            if not chunk:
                raise asyncio.IncompleteReadError(buffer, None)
            self._data_received.set()  # the connection keeper: the link is alive
            buffer += chunk
            pos = await self._handle_pdus(buffer)
            if pos < 0:
                return
            buffer = buffer[pos:]

    async def _handle_pdus(self, buffer: bytes) -> int:
        """Handle every whole PDU in ``buffer``; returns where the rest of it begins, or -1
        once the session ends."""
        pos = 0
        while len(buffer) - pos >= HEADER_LENGTH:
            length, command_id, status, sequence = HEADER.unpack_from(buffer, pos)
            self._frame(buffer[pos : pos + HEADER_LENGTH], length, command_id)
            if len(buffer) - pos < length:
                break
            pdu, pos = buffer[pos : pos + length], pos + length
            if command_id in _ANSWERS:
                self._answer(command_id, status, sequence, pdu)
            elif command_id == DELIVER_SM:
                self._deliver(sequence, pdu)
            elif not await self._handle_other(Header(length, command_id, status, sequence), pdu):
                return -1
        return pos

    def _receiving(self) -> bool:
        return not self._is_shutting_down and self._state is self._bound_state

    def _frame(self, head: bytes, length: int, command_id: int) -> None:
        """``read_header``'s checks, before the body is read; refuses what fails them."""
        try:
            check_framing(length, command_id)
        except MalformedPdu as error:
            self._refuse(head, error)
            raise

    async def _handle_other(self, raw: Header, pdu: bytes) -> bool:
        """ESME's handling of one PDU (binds, unbinds, enquire_link…): its handler, its hook,
        the response to a request; False once the session ends (an unbind, a lost bind)."""
        status = _STATUSES.get(raw.status, SmppCommandStatus.ESME_RUNKNOWNERR)
        header = PduHeader(raw.length, SmppCommand(raw.command_id), status, raw.sequence)
        request = header.smpp_command in COMMAND_RESPONSE_MAP
        handler = self._handle_request if request else self._handle_response
        message = await handler(pdu, header)
        await self.hook.received(message, pdu, self.client_id)
        if message and request:
            response = MESSAGE_TYPE_MAP[COMMAND_RESPONSE_MAP[header.smpp_command]]
            await self._send_data(response(header.sequence_num))
        return header.smpp_command is not SmppCommand.UNBIND and self._receiving()

    def _answer(self, command: int, status: int, sequence: int, pdu: bytes) -> None:
        """A submit_sm_resp or generic_nack to its part; ``status`` is the raw status, vendor
        codes included. An accepting submit_sm_resp must carry a sound id (``check_pdu``)."""
        if command == SUBMIT_SM_RESP:
            provider_id = self._accepted_id(pdu) if status == 0 else message_id(pdu)
        request = self.requests.pop(sequence)
        if not isinstance(request, OutboundPart):
            return  # an enquire_link's nack, or an answer after its part expired
        if command == SUBMIT_SM_RESP:
            self._events.answered(request, (status, provider_id))
        else:
            self._events.nacked(request, status)

    def _accepted_id(self, pdu: bytes) -> str:
        try:
            return accepted_message_id(pdu)
        except MalformedPdu as error:
            self._refuse(pdu[:HEADER_LENGTH], error)
            raise

    def _deliver(self, sequence: int, pdu: bytes) -> None:
        """Hand the deliver_sm over as raw octets; answer it now, or once its ack is done."""
        ack = self._events.deliver(pdu)
        link = self._link
        if ack is None:
            if link is not None and not link.is_closing():
                link.write(_deliver_sm_resp(0, sequence))
            return
        ack.add_done_callback(partial(self._acknowledge, link=link, sequence=sequence))

    def _acknowledge(self, done: Ack, link: StreamWriter | None, sequence: int) -> None:
        """deliver_sm_resp, on the link the deliver_sm came on (a new link has new numbers).
        A failed store answers ESME_RX_T_APPN: the SMSC delivers the receipt again."""
        if link is None or link is not self._link or link.is_closing():
            return  # the SMSC redelivers what was never acknowledged
        failed = done.cancelled() or done.exception() is not None
        link.write(_deliver_sm_resp(_RX_T_APPN if failed else 0, sequence))


class CorkedWriter(StreamWriter):
    """A ``StreamWriter`` whose writes of one event-loop iteration leave in one send().

    ESME's sender loop writes many submit_sm per iteration and its receive loop one
    deliver_sm_resp per receipt of a chunk, each a send() syscall of its own; corked, they
    share one. ``drain`` sees the bytes one iteration later: at most a window's worth.
    """

    def __init__(self, writer: StreamWriter, reader: StreamReader | None) -> None:
        transport, loop = writer.transport, asyncio.get_running_loop()
        super().__init__(transport, transport.get_protocol(), reader, loop)
        self._event_loop = loop
        self._plain = writer  # held: its __del__ would close the transport
        self._chunks: list[bytes] = []
        self._eof = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._chunks:
            self._event_loop.call_soon(self._flush)
        self._chunks.append(bytes(data))

    def write_eof(self) -> None:
        self._flush()
        self._eof = True
        if self.transport.can_write_eof():  # TLS cannot half-close; the close follows
            self.transport.write_eof()

    def close(self) -> None:
        self._flush()
        super().close()

    def _flush(self) -> None:
        data = b"".join(self._chunks)
        self._chunks.clear()
        # ESME may still answer a request after its unbind's write_eof; that answer is moot.
        if data and not self._eof and not self.transport.is_closing():
            self.transport.write(data)


class _Hook(AbstractHook):  # type: ignore[misc]
    """Registers each request before it is written; reports parts that could not be sent."""

    def __init__(self, requests: SequenceCorrelator, events: ClientEvents) -> None:
        self._requests = requests
        self._events = events

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        if not smpp_message.smpp_command & _RESPONSE_BIT:
            self._requests.register(smpp_message)

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        """Nothing: responses and deliver_sm were handled before this is called."""

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        if isinstance(smpp_message, OutboundPart):
            self._events.send_failed(smpp_message, error)


class JitteredBackoff(AbstractRetryTimer):  # type: ignore[misc]
    """ESME's reconnect timer on ``providers.backoff``: equal jitter, so binds never storm."""

    def __init__(self, base: float, cap: float) -> None:
        self._base, self._cap = base, cap
        self._attempt = 0
        self._next = 0.0
        self.reset()

    async def wait(self) -> None:
        delay = self._next
        self._attempt += 1
        self._next = backoff_delay(self._attempt, self._base, self._cap)
        await asyncio.sleep(delay)

    def reset(self) -> None:
        self._attempt = 0
        self._next = backoff_delay(0, self._base, self._cap)

    def next_delay(self) -> float:
        return self._next


class _NoThrottle(AbstractThrottleHandler):  # type: ignore[misc]
    """Never holds the sender back.

    aiosmpplib's default stops the whole bind for 3 s once 1 % of answers are throttled;
    we hand ESME_RTHROTTLED back to the submitter with its ``retry_after`` instead.
    """

    async def throttled(self) -> None:
        pass

    async def not_throttled(self) -> None:
        pass

    async def allow_request(self) -> bool:
        return True

    async def throttle_delay(self) -> float:
        return 0.0


def tls_context(settings: SmppSettings) -> ssl.SSLContext | None:
    """The client context of a ``tls`` provider: the system CAs or ``tls_ca``; with
    ``tls_verify`` off, no certificate or host name check (a test SMSC, never production)."""
    if not settings.tls:
        return None
    context = ssl.create_default_context(cafile=settings.tls_ca)
    if not settings.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _deliver_sm_resp(status: int, sequence: int) -> bytes:
    return _DELIVER_SM_RESP_HEAD.pack(17, _DELIVER_SM_RESP, status, sequence) + b"\0"


def _set_nodelay(writer: StreamWriter | None) -> None:
    sock = writer.get_extra_info("socket") if writer else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
