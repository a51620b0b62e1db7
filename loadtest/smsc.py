"""SMSC simulator: an SMPP 3.4 server for the gateway's tests and benchmarks.

Theory of operation
-------------------
Each TCP connection is a ``_Session`` (an ``asyncio.Protocol``: streams cost too much here).
``data_received`` splits the chunk into whole PDUs and handles them one by one; answers are
appended to the output list of whichever session they are for, and that session is marked
dirty. After the chunk every dirty session is flushed with a single ``transport.write``: a
window of 500 submits costs one write, not 500.

Submit path: decode, maybe inject a fault (throttled, queue full, rejected), else take the
next message id from the simulator-wide counter, answer (at once, or after ``resp_delay``
with one timer per chunk) and plan the receipt. Receipt bodies are encoded when the submit
arrives and wait in ``_ReceiptQueue`` in due-time order. One ticker task sleeps until the
earliest is due (plus a little slack so that receipts go out in batches), pops everything due
and hands each one to a receiver-capable session of the submitter's system_id, round-robin.
With no such session bound, or while hung, receipts wait in a bounded ``pending`` deque and
go out when one binds or the hang ends.

Operator limits: ``max_tps`` is a contract per system_id over all its sessions, enforced as
a GCRA (a token bucket refilled continuously, ``tps_burst`` deep): a burst above it is
answered ESME_RTHROTTLED however few submits it holds. ``SmscStats.sessions`` counts per
bound session (submits, window violations…) so that a test can see the load spread over
binds, and ``set_hang(session=…)`` hangs one session only.

Mobile-originated traffic: ``send_mo`` splits a text as an operator would (UDH, SAR TLVs or
message_payload) and hands each part to the receipt path, so that MO parts wait for a
receiver and are redelivered when unacknowledged exactly as receipts are.

Everything reads ``self.config`` per PDU, so ``update()`` changes behaviour at once. All
randomness comes from one ``random.Random(config.seed)``, and a ratio of 0 draws nothing.
Dates in receipts are UTC.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import heapq
import itertools
import json
import logging
import math
import random
import signal
import socket
import ssl
import sys
import time
import types
import typing
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple, TypeVar, cast

from loadtest.smpp_pdu import (
    BIND_COMMANDS,
    ESM_CLASS_RECEIPT,
    Bind,
    CommandId,
    MessageState,
    MoConcat,
    Pdu,
    PduError,
    PduReader,
    ShortMessage,
    Status,
    Tag,
    addressed,
    bind_resp,
    concat_info,
    decode_bind,
    decode_sm,
    encode_sm_body,
    enquire_link_resp,
    frame,
    generic_nack,
    mo_messages,
    receipt_text,
    submit_sm_resp,
    unbind_resp,
)

log = logging.getLogger("loadtest.smsc")
T = TypeVar("T")

RECEIPT_BATCH_SLACK = 0.002  # seconds a due receipt may wait so that receipts leave in batches
RECEIPT_RETRY_DELAY = 1.0  # seconds before a receipt refused with an error status goes again
CLOSE_GRACE = 2.0  # seconds stop() lets sessions flush before it aborts them
GSM_NETWORK = 3  # network type in the network_error_code TLV
SECONDS_KEPT = 3600  # entries of SmscStats.accepted_per_second

SUBMIT_MODES = frozenset({CommandId.BIND_TRANSMITTER, CommandId.BIND_TRANSCEIVER})
RECEIVE_MODES = frozenset({CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER})


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class SmscConfig:
    """Every knob of the simulator; the CLI flags are generated from these fields."""

    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(2775, "TCP port; 0 picks a free one")
    system_id: str | None = _setting("smsgw", "accepted system_id (see --any-credentials)")
    password: str = field(default="secret", repr=False, metadata={"doc": "accepted password"})
    smsc_system_id: str = _setting("SMSCSIM", "system_id returned in bind responses")
    id_format: Literal["hex", "dec"] = _setting("hex", "message ids in submit_sm_resp")
    receipt_id_format: Literal["same", "hex", "dec"] = _setting(
        "same", "message ids in receipts: as in the resp, or converted"
    )
    first_id: int = _setting(0xA0000000, "first message id (hex and dec forms differ from 1)")
    receipt_delay: float = _setting(0.1, "seconds from submit to receipt")
    receipt_jitter: float = _setting(0.0, "extra uniform random delay, seconds")
    delivered: float = _setting(1.0, "weight of DELIVRD receipts")
    undeliverable: float = _setting(0.0, "weight of UNDELIV receipts")
    expired: float = _setting(0.0, "weight of EXPIRED receipts")
    rejected: float = _setting(0.0, "weight of REJECTD receipts")
    seed: int = _setting(0, "seed of the random generator")
    throttle_ratio: float = _setting(0.0, "share of submits answered ESME_RTHROTTLED")
    msgqful_ratio: float = _setting(0.0, "share of submits answered ESME_RMSGQFUL")
    reject_ratio: float = _setting(0.0, "share of submits answered ESME_RINVDSTADR")
    resp_delay: float = _setting(0.0, "seconds each submit_sm_resp is held back")
    early_receipt_ratio: float = _setting(0.0, "share of receipts sent before the resp")
    duplicate_receipt_ratio: float = _setting(0.0, "share of receipts sent twice")
    lost_receipt_ratio: float = _setting(0.0, "share of receipts never sent")
    max_window: int | None = _setting(None, "outstanding submits per session before a violation")
    max_tps: float | None = _setting(None, "accepted submits per second per system_id (smooth)")
    tps_burst: int = _setting(1, "submits max_tps lets through back to back")
    max_pending_receipts: int = _setting(100_000, "receipts kept while no receiver is bound")
    tls_cert: str | None = _setting(None, "PEM certificate (chain): listen with TLS")
    tls_key: str | None = _setting(None, "PEM private key of --tls-cert")

    def __post_init__(self) -> None:
        _validate(self)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")


_FIXED_FIELDS = frozenset({"host", "port", "tls_cert", "tls_key"})
_SUBMIT_FAULTS = (
    ("throttle_ratio", Status.ESME_RTHROTTLED, "throttled"),
    ("msgqful_ratio", Status.ESME_RMSGQFUL, "msgqful"),
    ("reject_ratio", Status.ESME_RINVDSTADR, "rejected"),
)
_RATIOS = (
    *(name for name, _, _ in _SUBMIT_FAULTS),
    "early_receipt_ratio", "duplicate_receipt_ratio", "lost_receipt_ratio",
)  # fmt: skip


class Outcome(NamedTuple):
    state: MessageState
    err: int  # GSM error: in the receipt text and the network_error_code TLV


# Keyed by the SmscConfig field that weighs each outcome.
OUTCOMES: dict[str, Outcome] = {
    "delivered": Outcome(MessageState.DELIVERED, 0),
    "undeliverable": Outcome(MessageState.UNDELIVERABLE, 1),  # unknown subscriber
    "expired": Outcome(MessageState.EXPIRED, 27),  # absent subscriber
    "rejected": Outcome(MessageState.REJECTED, 13),  # call barred
}


def _validate(config: SmscConfig) -> None:
    for name in _RATIOS:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} must be within [0, 1]")
    if sum(getattr(config, name) for name, _, _ in _SUBMIT_FAULTS) > 1.0:
        raise ValueError("throttle_ratio + msgqful_ratio + reject_ratio exceeds 1")
    weights = [getattr(config, name) for name in OUTCOMES]
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("outcome weights must be >= 0 with a positive sum")
    if min(config.receipt_delay, config.receipt_jitter, config.resp_delay) < 0:
        raise ValueError("delays must be >= 0")
    if config.id_format not in ("hex", "dec") or config.receipt_id_format not in (
        "same", "hex", "dec",
    ):  # fmt: skip
        raise ValueError("id formats: id_format hex|dec, receipt_id_format same|hex|dec")
    if (config.max_window is not None and config.max_window < 1) or config.max_pending_receipts < 0:
        raise ValueError("max_window must be >= 1, max_pending_receipts >= 0")
    if (config.max_tps is not None and config.max_tps <= 0) or config.tps_burst < 1:
        raise ValueError("max_tps must be > 0, tps_burst >= 1")


@dataclass
class SessionStats:
    """One bound session's counters, kept after it closes (``open`` then turns False)."""

    system_id: str
    mode: str
    open: bool = True
    submits: int = 0
    accepted: int = 0
    throttled: int = 0
    max_outstanding: int = 0
    window_violations: int = 0


@dataclass
class SmscStats:
    """Counters since start; ``receipts_scheduled`` and ``receipts_pending`` are gauges.

    ``ignored_while_hung`` counts PDUs read and PDUs due to be written (delayed resps)
    that a hang swallowed. ``throttled`` counts every ESME_RTHROTTLED answer, ``over_tps``
    those of them that ``max_tps`` caused. ``accepted_per_second`` maps a wall-clock second
    (``int(time.time())``) to the submits accepted in it (the last hour is kept);
    ``sessions`` maps a session number to its counters.
    """

    binds: int = 0
    bind_failures: int = 0
    sessions_open: int = 0
    submits: int = 0
    parts: int = 0
    concat_messages: int = 0
    resp_ok: int = 0
    throttled: int = 0
    msgqful: int = 0
    rejected: int = 0
    receipts_scheduled: int = 0
    receipts_sent: int = 0
    receipts_pending: int = 0
    receipt_drops: int = 0
    receipts_early: int = 0
    receipts_duplicated: int = 0
    receipts_lost: int = 0
    deliver_sm_resp: int = 0
    receipts_redelivered: int = 0
    deliver_sm_resp_errors: int = 0
    enquire_links: int = 0
    unbinds: int = 0
    generic_nacks: int = 0
    bad_pdus: int = 0
    ignored_while_hung: int = 0
    window_violations: int = 0
    max_outstanding: int = 0
    over_tps: int = 0
    mo_messages: int = 0
    mo_parts_sent: int = 0
    accepted_per_second: dict[int, int] = field(default_factory=dict)
    sessions: dict[int, SessionStats] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def count_accepted(self, wall: float) -> None:
        second, per_second = int(wall), self.accepted_per_second
        if second not in per_second and len(per_second) >= SECONDS_KEPT:
            del per_second[next(iter(per_second))]
        per_second[second] = per_second.get(second, 0) + 1

    def bump(self, name: str) -> None:
        setattr(self, name, getattr(self, name) + 1)


class _Receipt(NamedTuple):
    """A deliver_sm waiting for a receiver: a receipt, or a mobile-originated part."""

    system_id: str
    body: bytes  # the encoded deliver_sm body; only the header varies per session
    mo: bool = False


class _ReceiptQueue:
    """Receipts by due time: a deque while they arrive in order, a heap for the stragglers.

    With a constant receipt_delay every push lands in the deque (O(1)); jitter or a live
    change of the delay sends the out-of-order ones to the heap.
    """

    def __init__(self) -> None:
        self._fifo: deque[tuple[float, _Receipt]] = deque()
        self._heap: list[tuple[float, int, _Receipt]] = []
        self._tie = itertools.count()

    def __len__(self) -> int:
        return len(self._fifo) + len(self._heap)

    def push(self, due: float, receipt: _Receipt) -> None:
        if not self._fifo or due >= self._fifo[-1][0]:
            self._fifo.append((due, receipt))
        else:
            heapq.heappush(self._heap, (due, next(self._tie), receipt))

    def next_due(self) -> float | None:
        heads = [q[0][0] for q in (self._fifo, self._heap) if q]
        return min(heads) if heads else None

    def pop_due(self, now: float) -> list[_Receipt]:
        fifo, heap = self._fifo, self._heap
        due: list[_Receipt] = []
        while fifo and fifo[0][0] <= now:
            due.append(fifo.popleft()[1])
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        return due


class _MinuteClock:
    """YYMMDDhhmm in UTC, formatted once per minute rather than once per receipt."""

    def __init__(self) -> None:
        self._minute = -1
        self._text = ""

    def stamp(self, wall: float) -> str:
        minute = int(wall // 60)
        if minute != self._minute:
            self._minute, self._text = minute, time.strftime("%y%m%d%H%M", time.gmtime(wall))
        return self._text


def format_id(number: int, fmt: str) -> str:
    return f"{number:X}" if fmt == "hex" else str(number)


def wants_receipt(registered_delivery: int, outcome: Outcome) -> bool:
    """Bits 0-1 of registered_delivery: 1 = always, 2 = on failure only."""
    bits = registered_delivery & 0x03
    return bits == 1 or (bits == 2 and outcome.state is not MessageState.DELIVERED)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Session(asyncio.Protocol):
    """One ESME connection. Output is buffered in ``out`` until the simulator flushes it."""

    transport: asyncio.Transport

    def __init__(self, sim: SmscSimulator) -> None:
        self.sim = sim
        self.reader = PduReader()
        self.mode: int | None = None  # the bind command once bound
        self.system_id = ""
        self.out: list[bytes] = []
        self.dirty = False
        self.closing = False
        self.resps_in_out = 0
        self.outstanding = 0
        self.held: list[bytes] = []
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.unacked: dict[int, _Receipt] = {}  # deliver_sm sent, no deliver_sm_resp yet
        self.number = 0  # the simulator's, once open
        self.counters = SessionStats("", "")  # replaced by the bound session's own
        self.hung = False
        self._timer_ids = itertools.count()
        self._seq = 0

    # -- transport callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sim._opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.sim._closed(self)
        # As a real SMSC does: a receipt the ESME never acknowledged is delivered again.
        self.sim._redeliver(list(self.unacked.values()))
        self.unacked.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.reader.feed(data)
        try:
            self._handle_all()
        except PduError as exc:
            self._malformed(exc)
        if self.held:
            self._hold_resps()
        self.sim.flush()

    # -- output ----------------------------------------------------------------------------

    def send(self, pdu: bytes) -> None:
        self.out.append(pdu)
        self.mark_dirty()

    def mark_dirty(self) -> None:
        if not self.dirty:
            self.dirty = True
            self.sim._dirty.append(self)

    def flush(self) -> None:
        data, self.out, self.dirty = self.out, [], False
        self.outstanding -= self.resps_in_out
        self.resps_in_out = 0
        if self.sim.hang or self.hung:
            self.sim.stats.ignored_while_hung += len(data)
        elif data and not self.transport.is_closing():
            self.transport.write(b"".join(data))
        if self.closing:
            self.transport.close()

    def close_after_flush(self) -> None:
        self.closing = True
        self.sim._unregister_receiver(self)
        self.mark_dirty()

    def next_seq(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    # -- input -----------------------------------------------------------------------------

    def _handle_all(self) -> None:
        sim = self.sim
        while not self.closing and (pdu := self.reader.next_pdu()) is not None:
            if sim.hang or self.hung:
                sim.stats.ignored_while_hung += 1
                continue
            handler = _HANDLERS.get(pdu.command_id, _Session._on_unknown)
            try:
                handler(self, pdu)
            except PduError as exc:
                raise PduError(str(exc), pdu.sequence) from exc

    def _malformed(self, exc: PduError) -> None:
        log.info("malformed PDU from %s: %s", self.system_id or "unbound session", exc)
        self.sim.stats.bad_pdus += 1
        if exc.sequence is not None:
            self.send(generic_nack(exc.sequence, Status.ESME_RINVCMDLEN))
        self.close_after_flush()

    def _on_unknown(self, pdu: Pdu) -> None:
        self.sim.stats.generic_nacks += 1
        self.send(generic_nack(pdu.sequence, Status.ESME_RINVCMDID))

    def _on_ignored(self, pdu: Pdu) -> None:
        pass

    def _on_bind(self, pdu: Pdu) -> None:
        bind = decode_bind(pdu.body)
        sim = self.sim
        status = Status.ESME_RALYBND if self.mode is not None else sim.check_credentials(bind)
        self.send(bind_resp(pdu.command_id, pdu.sequence, sim.config.smsc_system_id, status))
        if status == Status.ESME_RALYBND:
            return
        if status:
            sim.stats.bind_failures += 1
            self.close_after_flush()
            return
        self.mode, self.system_id = pdu.command_id, bind.system_id
        sim._bound(self)

    def _on_enquire_link(self, pdu: Pdu) -> None:
        self.sim.stats.enquire_links += 1
        self.send(enquire_link_resp(pdu.sequence))

    def _on_unbind(self, pdu: Pdu) -> None:
        self.sim.stats.unbinds += 1
        self.send(unbind_resp(pdu.sequence))
        self.close_after_flush()

    def _on_deliver_sm_resp(self, pdu: Pdu) -> None:
        stats = self.sim.stats
        stats.deliver_sm_resp += 1
        receipt = self.unacked.pop(pdu.sequence, None)
        if pdu.status:
            stats.deliver_sm_resp_errors += 1
            if receipt is not None:  # refused for now: try again later, as SMSCs do
                self.sim._retry_later(receipt)

    def _on_submit_sm(self, pdu: Pdu) -> None:
        if self.mode not in SUBMIT_MODES:
            self.send(submit_sm_resp(pdu.sequence, "", Status.ESME_RINVBNDSTS))
            return
        sm = decode_sm(pdu.body)
        self._count_outstanding()
        resp = self.sim.accept_submit(self, sm, pdu.sequence)
        if self.sim.config.resp_delay > 0:
            self.held.append(resp)
        else:
            self.send(resp)
            self.resps_in_out += 1

    # -- submit windows --------------------------------------------------------------------

    def _count_outstanding(self) -> None:
        self.outstanding += 1
        stats, mine, limit = self.sim.stats, self.counters, self.sim.config.max_window
        stats.max_outstanding = max(stats.max_outstanding, self.outstanding)
        mine.max_outstanding = max(mine.max_outstanding, self.outstanding)
        if limit is not None and self.outstanding > limit:
            stats.window_violations += 1
            mine.window_violations += 1

    def _hold_resps(self) -> None:
        resps, self.held = self.held, []
        key = next(self._timer_ids)
        loop = asyncio.get_running_loop()
        self.timers[key] = loop.call_later(self.sim.config.resp_delay, self._release, key, resps)

    def _release(self, key: int, resps: list[bytes]) -> None:
        del self.timers[key]
        for resp in resps:
            self.send(resp)
        self.resps_in_out += len(resps)
        self.sim.flush()


_HANDLERS: dict[int, Callable[[_Session, Pdu], None]] = {
    CommandId.SUBMIT_SM: _Session._on_submit_sm,
    CommandId.DELIVER_SM_RESP: _Session._on_deliver_sm_resp,
    CommandId.ENQUIRE_LINK: _Session._on_enquire_link,
    CommandId.UNBIND: _Session._on_unbind,
    CommandId.ENQUIRE_LINK_RESP: _Session._on_ignored,
    CommandId.UNBIND_RESP: _Session._on_ignored,
    CommandId.GENERIC_NACK: _Session._on_ignored,
    **{command: _Session._on_bind for command in BIND_COMMANDS},
}


class SmscSimulator:
    """An SMSC on one TCP port; see the module docstring for how it works."""

    def __init__(self, config: SmscConfig | None = None) -> None:
        self.config = config or SmscConfig()
        self.stats = SmscStats()
        self.hang = False
        self.last_submits: deque[ShortMessage] = deque(maxlen=100)  # what arrived, for tests
        self._rng = random.Random(self.config.seed)
        self._submit_faults: list[tuple[float, Status, str]] = []
        self._outcomes: list[tuple[float, Outcome]] = []
        self._pending: deque[_Receipt] = deque(maxlen=self.config.max_pending_receipts)
        self._apply(self.config)
        self._next_id = self.config.first_id
        self._queue = _ReceiptQueue()
        self._clock = _MinuteClock()
        self._sessions: set[_Session] = set()
        self._receivers: dict[str, list[_Session]] = {}
        self._round_robin: dict[str, int] = {}
        self._session_numbers = itertools.count(1)
        self._tps_due: dict[str, float] = {}  # system_id → GCRA theoretical arrival time
        self._mo_reference = 0
        self._dirty: list[_Session] = []
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._wake_before = -math.inf
        self._all_closed = asyncio.Event()
        self._all_closed.set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Session(self),
            self.config.host,
            self.config.port,
            backlog=1024,
            ssl=_server_tls(self.config),
        )
        self._ticker = loop.create_task(self._run_ticker(), name="smsc-receipts")
        self._ticker.add_done_callback(_log_crash)

    async def stop(self) -> None:
        """Stop listening, close sessions (abort those that do not flush in time), stop."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.transport.close()
        try:
            await asyncio.wait_for(self._all_closed.wait(), CLOSE_GRACE)
        except TimeoutError:
            self.drop_connections()
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait([self._ticker])
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the simulator is not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def port(self) -> int:
        return self.address[1]

    # -- live control ----------------------------------------------------------------------

    def update(self, **changes: Any) -> None:
        """Replace settings live (all but host and port)."""
        if fixed := _FIXED_FIELDS & changes.keys():
            raise ValueError(f"cannot change {sorted(fixed)} while running")
        config = dataclasses.replace(self.config, **changes)
        if "seed" in changes:
            self._rng.seed(config.seed)
        self._apply(config)

    def set_hang(self, hang: bool, *, session: int | None = None) -> None:
        """While hung, PDUs are read and ignored, and nothing at all is written.

        ``session`` (a number from ``sessions``) hangs that one session only; receipts and
        MO parts then go to the other receivers of its system_id; a new session of the same
        ESME (after a reconnect) is not hung.
        """
        if session is None:
            self.hang = hang
        for one in self._sessions:
            if one.number == session:  # a session already gone is left alone
                one.hung = hang
        if not hang:
            self._release_pending()
            self.flush()

    def sessions(self, system_id: str | None = None) -> list[int]:
        """Numbers of the bound sessions (of ``system_id``), oldest first."""
        return sorted(
            s.number
            for s in self._sessions
            if s.mode is not None and system_id in (None, s.system_id)
        )

    def send_mo(
        self,
        system_id: str,
        source: str,
        destination: str,
        text: str,
        *,
        concat: MoConcat = "udh",
        ucs2: bool | None = None,
    ) -> int:
        """Deliver a mobile-originated text to a receiver of ``system_id``; return its parts.

        It is split as an operator would (GSM-7, or UCS-2 when needed or asked for), each
        part a deliver_sm that waits and is redelivered exactly like a receipt.
        """
        self._mo_reference = self._mo_reference % 0xFFFF + 1
        template = addressed(source, destination)
        parts = mo_messages(template, text, concat, ucs2, self._mo_reference)
        self.stats.mo_messages += 1
        for sm in parts:
            self._dispatch(_Receipt(system_id, encode_sm_body(sm), mo=True))
        self.flush()
        return len(parts)

    def drop_connections(self) -> None:
        for session in list(self._sessions):
            session.transport.abort()

    def _apply(self, config: SmscConfig) -> None:
        self.config = config
        self._submit_faults = [
            (getattr(config, name), status, counter)
            for name, status, counter in _SUBMIT_FAULTS
            if getattr(config, name) > 0
        ]
        total = sum(getattr(config, name) for name in OUTCOMES)
        self._outcomes = [
            (getattr(config, name) / total, outcome)
            for name, outcome in OUTCOMES.items()
            if getattr(config, name) > 0
        ]
        if self._pending.maxlen != config.max_pending_receipts:
            self._resize_pending(config.max_pending_receipts)

    def _resize_pending(self, size: int) -> None:
        kept = deque(self._pending, maxlen=size)
        self.stats.receipt_drops += len(self._pending) - len(kept)
        self.stats.receipts_pending = len(kept)
        self._pending = kept

    # -- sessions --------------------------------------------------------------------------

    def _opened(self, session: _Session) -> None:
        session.number = next(self._session_numbers)
        self._sessions.add(session)
        self._all_closed.clear()
        self.stats.sessions_open += 1

    def _closed(self, session: _Session) -> None:
        self._unregister_receiver(session)
        self._sessions.discard(session)
        self.stats.sessions_open -= 1
        session.counters.open = False
        if not self._sessions:
            self._all_closed.set()

    def check_credentials(self, bind: Bind) -> Status:
        expected = self.config.system_id
        if expected is None:
            return Status.ESME_ROK
        if bind.system_id != expected:
            return Status.ESME_RINVSYSID
        if bind.password != self.config.password:
            return Status.ESME_RINVPASWD
        return Status.ESME_ROK

    def _bound(self, session: _Session) -> None:
        self.stats.binds += 1
        mode = CommandId(session.mode or 0).name.removeprefix("BIND_").lower()
        session.counters = SessionStats(session.system_id, mode)
        self.stats.sessions[session.number] = session.counters
        if session.mode in RECEIVE_MODES:
            self._receivers.setdefault(session.system_id, []).append(session)
            self._release_pending()

    def _unregister_receiver(self, session: _Session) -> None:
        receivers = self._receivers.get(session.system_id, [])
        if session in receivers:
            receivers.remove(session)

    def _pick_receiver(self, system_id: str) -> _Session | None:
        receivers = self._receivers.get(system_id, [])
        for _ in receivers:
            turn = self._round_robin.get(system_id, 0) + 1
            self._round_robin[system_id] = turn
            session = receivers[turn % len(receivers)]
            if not session.hung:
                return session
        return None

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush()

    # -- submits ---------------------------------------------------------------------------

    def accept_submit(self, session: _Session, sm: ShortMessage, sequence: int) -> bytes:
        """Count one submit_sm, decide its fate, plan its receipt; return its resp."""
        self.stats.submits += 1
        self.last_submits.append(sm)
        session.counters.submits += 1
        if sm.esm_class & 0x40 or Tag.SAR_MSG_REF_NUM in sm.tlvs:
            self._count_part(sm)
        status = self._over_tps(session.system_id) or self._draw_submit_fault()
        if status:
            if status == Status.ESME_RTHROTTLED:
                session.counters.throttled += 1
            return submit_sm_resp(sequence, "", status)
        number, self._next_id = self._next_id, self._next_id + 1
        message_id = format_id(number, self.config.id_format)
        self.stats.resp_ok += 1
        session.counters.accepted += 1
        self.stats.count_accepted(time.time())
        self._plan_receipt(session.system_id, sm, number, message_id)
        return submit_sm_resp(sequence, message_id)

    def _over_tps(self, system_id: str) -> Status:
        """The contract's rate as a GCRA (a smooth token bucket of ``tps_burst`` tokens)."""
        rate = self.config.max_tps
        if rate is None:
            return Status.ESME_ROK
        now, interval = time.monotonic(), 1.0 / rate
        due = max(self._tps_due.get(system_id, now), now)
        if due - now > (self.config.tps_burst - 1) * interval + 1e-9:
            self.stats.throttled += 1
            self.stats.over_tps += 1
            return Status.ESME_RTHROTTLED
        self._tps_due[system_id] = due + interval
        return Status.ESME_ROK

    def _count_part(self, sm: ShortMessage) -> None:
        self.stats.parts += 1
        concat = concat_info(sm)
        if concat is not None and concat.part == 1:
            self.stats.concat_messages += 1

    def _draw_submit_fault(self) -> Status:
        if not self._submit_faults:
            return Status.ESME_ROK
        draw = self._rng.random()
        for ratio, status, counter in self._submit_faults:
            if draw < ratio:
                self.stats.bump(counter)
                return status
            draw -= ratio
        return Status.ESME_ROK

    def _chance(self, ratio: float) -> bool:
        return ratio > 0 and self._rng.random() < ratio

    def _draw_outcome(self) -> Outcome:
        outcomes = self._outcomes
        if len(outcomes) == 1:
            return outcomes[0][1]
        draw = self._rng.random()
        for share, outcome in outcomes:
            if draw < share:
                return outcome
            draw -= share
        return outcomes[-1][1]

    # -- receipts --------------------------------------------------------------------------

    def _plan_receipt(self, system_id: str, sm: ShortMessage, number: int, message_id: str) -> None:
        config = self.config
        outcome = self._draw_outcome()
        if not wants_receipt(sm.registered_delivery, outcome):
            return
        if self._chance(config.lost_receipt_ratio):
            self.stats.receipts_lost += 1
            return
        if config.receipt_id_format != "same":
            message_id = format_id(number, config.receipt_id_format)
        receipt = _Receipt(system_id, self._receipt_body(sm, message_id, outcome))
        copies = 1
        if self._chance(config.duplicate_receipt_ratio):
            self.stats.receipts_duplicated += 1
            copies = 2
        send = self._schedule
        if self._chance(config.early_receipt_ratio):
            self.stats.receipts_early += 1
            send = self._dispatch
        for _ in range(copies):
            send(receipt)

    def _receipt_body(self, sm: ShortMessage, message_id: str, outcome: Outcome) -> bytes:
        now = time.time()
        stamp = self._clock.stamp
        text = receipt_text(
            message_id, outcome.state, outcome.err, stamp(now),
            stamp(now + self.config.receipt_delay), sm.short_message,
        )  # fmt: skip
        tlvs: dict[int, bytes] = {
            Tag.RECEIPTED_MESSAGE_ID: message_id.encode("ascii") + b"\0",
            Tag.MESSAGE_STATE: bytes((outcome.state,)),
        }
        if outcome.err:
            tlvs[Tag.NETWORK_ERROR_CODE] = bytes((GSM_NETWORK,)) + outcome.err.to_bytes(2, "big")
        return encode_sm_body(
            ShortMessage(
                sm.destination_addr, sm.source_addr, text,
                source_addr_ton=sm.dest_addr_ton, source_addr_npi=sm.dest_addr_npi,
                dest_addr_ton=sm.source_addr_ton, dest_addr_npi=sm.source_addr_npi,
                esm_class=ESM_CLASS_RECEIPT, tlvs=tlvs,
            )
        )  # fmt: skip

    def _schedule(self, receipt: _Receipt) -> None:
        config = self.config
        due = asyncio.get_running_loop().time() + config.receipt_delay
        if config.receipt_jitter:
            due += self._rng.uniform(0, config.receipt_jitter)
        self._queue.push(due, receipt)
        self.stats.receipts_scheduled += 1
        if due < self._wake_before and self._waiter is not None:
            _resolve(self._waiter)

    def _dispatch(self, receipt: _Receipt) -> None:
        session = None if self.hang else self._pick_receiver(receipt.system_id)
        if session is None:
            self._keep(receipt)
            return
        sequence = session.next_seq()
        session.unacked[sequence] = receipt
        session.send(frame(CommandId.DELIVER_SM, sequence, receipt.body))
        if receipt.mo:
            self.stats.mo_parts_sent += 1
        else:
            self.stats.receipts_sent += 1

    def _retry_later(self, receipt: _Receipt) -> None:
        due = asyncio.get_running_loop().time() + RECEIPT_RETRY_DELAY
        self._queue.push(due, receipt)
        self.stats.receipts_scheduled += 1
        if due < self._wake_before and self._waiter is not None:
            _resolve(self._waiter)

    def _redeliver(self, receipts: list[_Receipt]) -> None:
        self.stats.receipts_redelivered += len(receipts)
        for receipt in receipts:
            self._dispatch(receipt)
        self.flush()

    def _keep(self, receipt: _Receipt) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.stats.receipt_drops += 1
        else:
            self.stats.receipts_pending += 1
        self._pending.append(receipt)

    def _release_pending(self) -> None:
        if not self._pending or self.hang:
            return
        waiting, self._pending = self._pending, deque(maxlen=self._pending.maxlen)
        self.stats.receipts_pending = 0
        for receipt in waiting:
            self._dispatch(receipt)

    async def _run_ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._sleep_until(self._queue.next_due())
            receipts = self._queue.pop_due(loop.time())
            self.stats.receipts_scheduled -= len(receipts)
            for receipt in receipts:
                self._dispatch(receipt)
            self.flush()

    async def _sleep_until(self, due: float | None) -> None:
        """Sleep until ``due`` (forever if None), or until an earlier receipt is scheduled."""
        loop = asyncio.get_running_loop()
        if due is not None and due <= loop.time():
            return
        self._waiter = waiter = loop.create_future()
        self._wake_before = math.inf if due is None else due
        timer = None if due is None else loop.call_at(due + RECEIPT_BATCH_SLACK, _resolve, waiter)
        try:
            await waiter
        finally:
            self._waiter, self._wake_before = None, -math.inf
            if timer is not None:
                timer.cancel()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("receipt ticker crashed", exc_info=task.exception())


# -- command line ----------------------------------------------------------------------------


def _arg_options(hint: Any) -> dict[str, Any]:
    if typing.get_origin(hint) is Literal:
        return {"choices": typing.get_args(hint), "type": str}
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return {"type": hint}


def _server_tls(config: SmscConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgw-smsc", description="SMPP 3.4 SMSC simulator")
    hints = typing.get_type_hints(SmscConfig, globalns=globals())
    for f in fields(SmscConfig):
        flag = "--" + f.name.replace("_", "-")
        options = _arg_options(hints[f.name])
        parser.add_argument(flag, default=f.default, help=f.metadata["doc"], **options)
    parser.add_argument("--any-credentials", action="store_true", help="accept every bind")
    parser.add_argument("--stats-interval", type=float, default=0.0, help="print stats every N s")
    parser.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
    return parser


def config_from_args(args: argparse.Namespace) -> SmscConfig:
    values = {f.name: getattr(args, f.name) for f in fields(SmscConfig)}
    if args.any_credentials:
        values["system_id"] = None
    return SmscConfig(**values)


async def serve(config: SmscConfig, stats_interval: float = 0.0) -> None:
    """Run until SIGINT/SIGTERM; announce the address on stdout, stats go to stderr."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SmscSimulator(config) as sim:
        host, port = sim.address
        print(f"listening on {host}:{port}", flush=True)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), stats_interval or None)
            except TimeoutError:
                _print_stats(sim.stats)
    if stats_interval:
        _print_stats(sim.stats)


def _print_stats(stats: SmscStats) -> None:
    print(json.dumps(stats.snapshot()), file=sys.stderr, flush=True)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"smsgw-smsc: {exc}") from exc
    run(serve(config, args.stats_interval))


if __name__ == "__main__":
    main()
