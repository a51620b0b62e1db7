"""One bind of the pool: its connection(s), its window, its health.

A ``Bind`` is one transmitting connection (a transceiver, or a transmitter with its own
receiver) with its own ``Outbox``: the window of submit_sm unanswered on that connection is
held there and never exceeded, whatever the other binds do.

Adaptive window. Each answer goes through ``providers.aimd`` with its latency; the window
grows while answers are fast and accepted, and shrinks on ESME_RTHROTTLED / ESME_RMSGQFUL,
on a timeout, or when answers slow down. A throttled bind also pauses for
``throttle_pause`` before it sends again; the submitter sends the refused part again (on
this bind or another) without going back to the database.

Health. A bind whose submits go unanswered past ``response_timeout`` is cut at once (the
sweep finds them; aiosmpplib cuts one whose enquire_link goes unanswered), which fails what
it had in flight with a temporary error, and ESME reconnects it with jittered backoff.
Timeouts, generic_nacks and send errors are strikes; ``quarantine_after`` strikes in a row
(no accepted answer between them) take the bind out: it unbinds, waits ``quarantine``
seconds and binds again with fresh connections. When a link drops, only the parts written
on it fail (the SMSC may have taken them: the submitter decides); parts still queued move to
another bind. Parts in flight on other binds are never touched. A malformed PDU from the
SMSC ends its session the same way (the client refuses it); it is counted, not a strike:
the SMSC's garbage says nothing about this bind's health.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Protocol

from aiosmpplib import AbstractBroker, BindMode, SmppMessage, SmppSessionState

from providers import aimd
from providers.base import Ack, ProviderError
from providers.smpp._log import LOG
from providers.smpp.client import SmppClient
from providers.smpp.outbox import OutboundPart, Outbox, Outcome
from providers.smpp.pdu import MalformedPdu
from providers.smpp.settings import SmppSettings
from providers.smpp.status import (
    CLOSING,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    LINK_LOST,
    SEND_FAILED,
    TIMEOUT,
    temporary,
)

THROTTLING: Final = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})


class Owner(Protocol):
    """What a bind reports to its pool; each method returns at once."""

    @property
    def accepting(self) -> bool: ...
    def deliver(self, pdu: bytes) -> Ack | None: ...
    def reroute(self, parts: list[OutboundPart], error: Callable[[], ProviderError]) -> None: ...


class Bind:
    """One connection of the pool; see the module docstring."""

    def __init__(self, settings: SmppSettings, index: int, owner: Owner) -> None:
        self.label = f"{settings.name}#{index}"
        self._settings = settings
        self._owner = owner
        self._aimd_settings = aimd.AimdSettings(
            settings.window_min, settings.window, settings.latency_target, settings.latency_factor
        )
        self._aimd = aimd.start(self._aimd_settings)
        self.outbox = Outbox(self._aimd.size)
        self._rx_broker = _NothingToSend()
        self._clients = self._make_clients()
        self._strikes = 0
        self._quarantine: asyncio.Task[None] | None = None
        self.submitted = self.throttled = self.errors = self.timeouts = self.binds = 0
        self.malformed_pdus = 0

    def _make_clients(self) -> tuple[SmppClient, ...]:
        s, outbox, label = self._settings, self.outbox, self.label
        if s.bind_mode == "transceiver":
            return (SmppClient(s, BindMode.TRANSCEIVER, outbox, outbox, self, label),)
        return (
            SmppClient(s, BindMode.TRANSMITTER, outbox, outbox, self, label),
            SmppClient(s, BindMode.RECEIVER, self._rx_broker, None, self, label),
        )

    @property
    def up(self) -> bool:
        """Bound for sending and not in quarantine."""
        return self._clients[0].bound and self._quarantine is None

    @property
    def quarantined(self) -> bool:
        return self._quarantine is not None

    def state(self) -> dict[str, object]:
        """For the provider's snapshot."""
        return {
            "label": self.label,
            "up": self.up,
            "quarantined": self.quarantined,
            "in_flight": self.outbox.in_flight,
            "window": self.outbox.window,
            "latency_ms": round((self._aimd.latency or 0.0) * 1000, 2),
            "submitted": self.submitted,
            "throttled": self.throttled,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "binds": self.binds,
            "malformed_pdus": self.malformed_pdus,
        }

    # Lifecycle

    async def open(self) -> None:
        for client in self._clients:
            await client.open(self._settings.connect_timeout)

    def relaunch(self) -> None:
        """Fresh connections that bind (and rebind) in the background."""
        self._clients = self._make_clients()
        for client in self._clients:
            client.launch()

    async def close(self) -> None:
        if self._quarantine is not None:
            self._quarantine.cancel()
            await asyncio.wait({self._quarantine})
        await self._close_clients()

    async def _close_clients(self) -> None:
        for client in self._clients:
            await client.close(self._settings.close_timeout)
        self.outbox.fail_all(lambda: temporary(CLOSING, f"{self.label} closed"))

    # ClientEvents: called by the ESMEs on their own tasks; each returns at once.

    def state_changed(self, client: SmppClient, state: SmppSessionState) -> None:
        tx = client is self._clients[0]
        if not tx:
            self._rx_broker.link(up=client.bound)
        if client.bound:
            LOG.info("%s: bound", client.label)
            self.binds += tx
            if tx:
                self.outbox.open()
        elif state is SmppSessionState.CLOSED:
            failed = self._fail_unanswered(client.label) if tx else 0
            level = logging.WARNING if failed else logging.INFO
            LOG.log(level, "%s: not bound; %d parts failed", client.label, failed)

    def _fail_unanswered(self, label: str) -> int:
        """Parts written on the lost link fail (the SMSC may have taken them); the others
        go to another bind."""
        code = LINK_LOST if self._owner.accepting else CLOSING
        retry_after = self._settings.reconnect_min

        def error() -> ProviderError:
            return temporary(code, f"{label} unbound", retry_after)

        unsent = self.outbox.take_unsent()
        failed = self.outbox.fail_all(error)
        self._owner.reroute(unsent, error)
        return failed

    def answered(self, part: OutboundPart, outcome: Outcome) -> None:
        status = outcome[0]
        now, throttled = asyncio.get_running_loop().time(), status in THROTTLING
        latency = now - part.sent_at
        self._aimd = aimd.answered(self._aimd_settings, self._aimd, now, latency, throttled)
        self.outbox.resize(self._aimd.size)
        if status == ESME_ROK:
            self.submitted += 1
            self._strikes = 0
        elif throttled:
            self.throttled += 1
            self.outbox.pause(self._settings.throttle_pause)
        else:
            self.errors += 1
        self.outbox.settle(part, outcome)

    def nacked(self, part: OutboundPart, status: int) -> None:
        self.errors += 1
        self.outbox.settle(part, (status, ""))
        self._strike("generic_nack")

    def send_failed(self, part: OutboundPart, error: Exception) -> None:
        self.errors += 1
        self.outbox.settle(part, temporary(SEND_FAILED, error.__class__.__name__))
        self._strike("send error")

    def deliver(self, pdu: bytes) -> Ack | None:
        return self._owner.deliver(pdu)

    def malformed(self, client: SmppClient, error: MalformedPdu) -> None:
        self.malformed_pdus += 1
        LOG.warning("%s: malformed PDU, session closed: %s", client.label, error)

    # Health

    def sweep(self) -> None:
        """Fail the parts overdue on this bind; cut its connection if it had any."""
        timeout, overdue = self._settings.response_timeout, 0
        for client in self._clients:
            for request in client.requests.sweep():
                if isinstance(request, OutboundPart):
                    error = temporary(TIMEOUT, f"no submit_sm_resp within {timeout:g} s")
                    self.outbox.settle(request, error)
                    overdue += 1
        if overdue:
            self.timeouts += 1
            self.errors += overdue
            now = asyncio.get_running_loop().time()
            self._aimd = aimd.congested(self._aimd_settings, self._aimd, now)
            self.outbox.resize(self._aimd.size)
            LOG.warning("%s: %d submits unanswered; reconnecting", self.label, overdue)
            self._clients[0].drop()
            self._strike("timeout")

    def _strike(self, why: str) -> None:
        self._strikes += 1
        if self._strikes >= self._settings.quarantine_after and self._quarantine is None:
            LOG.warning("%s: %d strikes (last: %s); quarantined", self.label, self._strikes, why)
            self._quarantine = asyncio.create_task(self._sit_out(), name=f"{self.label} quarantine")

    async def _sit_out(self) -> None:
        await self._close_clients()
        await asyncio.sleep(self._settings.quarantine)
        self._strikes = 0
        self._aimd = aimd.start(self._aimd_settings)
        self.outbox.resize(self._aimd.size)
        self.relaunch()
        self._quarantine = None
        LOG.info("%s: back from quarantine", self.label)


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
