"""Parts waiting to go and parts in flight: aiosmpplib's broker and rate limiter, as one window.

aiosmpplib's sender loop takes one message from its broker, awaits its rate limiter, and
writes the PDU; it has no window of its own. The ``Outbox`` is both of those objects, so
the window lives in one place: ``limit`` lets the part just dequeued through only while
fewer than ``window`` parts await their submit_sm_resp, and that part holds its slot until
``settle`` (response, send error, expiry, bind lost, close) frees it, exactly once.

While no bind is up the window is shut: ``limit`` waits, so a sender task aiosmpplib has
not torn down yet never writes a part that was already failed back to its submitter.

The window is adaptive: the bind ``resize``s it after each answer (``providers.aimd``), and
``pause``s it for a moment when the SMSC throttles. Shrinking never recalls parts already
sent; it only holds new ones back until enough answers came in.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from aiosmpplib import AbstractBroker, AbstractRateLimiter, SmppCommandStatus, SmppMessage, SubmitSm

from providers.base import ProviderError
from providers.smpp.pdu import HEADER_LENGTH

Outcome = tuple[int, str]
"""A submit_sm_resp (or generic_nack) as the submitter sees it: command_status, message_id."""


class OutboundPart(SubmitSm):  # type: ignore[misc]
    """One submit_sm whose body ``providers.smpp.pdu`` built; aiosmpplib frames and sends it.

    ``SubmitSm.__init__`` is skipped on purpose: it validates and encodes text that we have
    already encoded. ``auto_message_payload`` is True only to keep the ESME's own splitter
    away (it runs when the flag is False); ``pdu`` never moves anything to message_payload.
    """

    def __init__(self, body: bytes, future: asyncio.Future[Outcome]) -> None:
        self.sequence_num = 0
        self.command_status = SmppCommandStatus.ESME_ROK
        self.esm_class = 0
        self.auto_message_payload = True
        self.log_id = self.extra_data = ""
        self.body = body
        self.future = future
        self.holds_slot = False
        self.settled = False
        self.sent_at = 0.0  # loop time it took its slot: the answer's latency runs from here

    __hash__ = object.__hash__  # identity, not the dataclass fields this object lacks

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:  # the dataclass repr would print the recipient
        return f"OutboundPart(sequence_num={self.sequence_num})"

    def set_encoding_info(self, default_encoding: str, custom_codecs: object) -> None:
        """Nothing to set: the body is encoded already."""

    def pdu(self) -> bytes:
        header: bytes = self.pack_header(HEADER_LENGTH + len(self.body))
        return header + self.body


class Outbox(AbstractBroker, AbstractRateLimiter):  # type: ignore[misc]
    """The window of one transmitting bind: queued parts, the part in hand, parts in flight."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._queue: deque[OutboundPart] = deque()
        self._current: OutboundPart | None = None  # dequeued, not through ``limit`` yet
        self._held: set[OutboundPart] = set()
        self._open = False
        self._paused = False
        self._resume: asyncio.TimerHandle | None = None
        self._queued = asyncio.Event()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def free(self) -> int:
        """Slots neither held nor promised to a queued part."""
        return max(0, self.window - len(self._held) - len(self._queue))

    @property
    def in_flight(self) -> int:
        return len(self._held)

    @property
    def load(self) -> float:
        """Parts held or waiting, relative to the window (the pool sends to the least loaded)."""
        waiting = len(self._queue) + (self._current is not None)
        return (len(self._held) + waiting) / self.window + self._paused

    def resize(self, window: int) -> None:
        if window > self.window:
            self._room.set()
        self.window = window

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (from now, a later call extends it)."""
        if self._resume is not None:
            self._resume.cancel()
        self._paused = True
        self._resume = asyncio.get_running_loop().call_later(seconds, self._unpause)

    def _unpause(self) -> None:
        self._paused, self._resume = False, None
        self._room.set()

    def put(self, part: OutboundPart) -> None:
        self._queue.append(part)
        self._queued.set()
        self._idle.clear()

    def open(self) -> None:
        """A bind is up: let parts through."""
        self._open = True
        self._room.set()

    def take_unsent(self) -> list[OutboundPart]:
        """Remove and return the parts not written yet (another bind may send them)."""
        unsent = [*([self._current] if self._current else []), *self._queue]
        self._queue.clear()
        self._current = None
        self._queued.set()  # wake an idle sender loop to end it
        self._check_idle()
        return unsent

    def fail_all(self, error: Callable[[], ProviderError]) -> int:
        """Shut the window and fail every part not yet answered (each with a fresh error)."""
        self._open = False
        pending = [*self._held, *self._queue, *([self._current] if self._current else [])]
        self._queue.clear()
        self._current = None
        self._queued.set()  # wake an idle sender loop to end it
        for part in pending:
            self.settle(part, error())
        return len(pending)

    def settle(self, part: OutboundPart, outcome: Outcome | ProviderError) -> None:
        """The part's end, whichever comes first; later calls for it do nothing."""
        if part.settled:
            return
        part.settled = True
        if part.holds_slot:
            self._held.discard(part)
            self._room.set()
        if not part.future.done():
            _resolve(part.future, outcome)
        self._check_idle()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    # AbstractBroker and AbstractRateLimiter, as aiosmpplib's sender loop calls them.

    async def enqueue(self, message: SmppMessage) -> None:
        if not isinstance(message, OutboundPart):
            raise TypeError("only OutboundPart goes through the SMPP provider's outbox")
        self.put(message)

    async def dequeue(self) -> OutboundPart:
        while True:
            while not self._queue:
                if not self._open:  # ends ESME's sender loop now, not after its 0.5 s grace
                    raise ConnectionAbortedError("the bind is down")
                self._queued.clear()
                await self._queued.wait()
            part = self._queue.popleft()
            if not part.future.done():  # its submitter gave up (cancelled) while it queued
                self._current = part
                return part
            part.settled = True
            self._check_idle()

    async def limit(self) -> None:
        while self._blocked():
            self._room.clear()
            await self._room.wait()
        part, self._current = self._current, None
        assert part is not None  # _blocked() saw it
        part.holds_slot = True
        part.sent_at = asyncio.get_running_loop().time()
        self._held.add(part)

    def _blocked(self) -> bool:
        shut = self._paused or not self._open
        return shut or len(self._held) >= self.window or self._current is None

    def _check_idle(self) -> None:
        if not (self._queue or self._held or self._current):
            self._idle.set()


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome | ProviderError) -> None:
    if isinstance(outcome, ProviderError):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
