"""The dispatcher's side of routing: live state in, decisions out, outcomes back.

``routing`` is pure: it decides from a table and a snapshot of each provider's state.
The ``Router`` keeps what that needs in this process: the current table (swapped whole
on reload), a circuit breaker per provider fed by submit outcomes and receipts, and
the live state read from the providers (up, window room) and their TPS limiters (a
limiter with more than ``_BACKLOG_S`` of waiting demand counts as out of tokens, so
that the next route takes the overflow instead of a queue forming).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from gateway.core.message import NewMessage, Outbound, Priority
from providers.base import Provider, Receipt, ReceiptStatus
from routing import Breaker, Decision, ProviderState, RouteRequest, RouteTable, choose
from routing.health import Gate, Outcome

log = logging.getLogger("gateway.routing")

_BACKLOG_S = 0.1
_FOLD_S = 0.1
CLASS_OF: Mapping[Priority, str] = {
    Priority.OTP: "otp",
    Priority.TRANSACTIONAL: "transactional",
    Priority.BULK: "bulk",
}


def request_for(
    message: Outbound | NewMessage, excluded: frozenset[str] = frozenset()
) -> RouteRequest:
    return RouteRequest(
        getattr(message, "id", 0),
        message.destination,
        message.parts,
        CLASS_OF[message.priority],
        message.sender,
        excluded,
    )


def provider_states(live: Mapping[str, Mapping[str, Any]]) -> dict[str, ProviderState]:
    """What the pool state in Redis (summed over processes) says to ``choose``."""
    return {
        name: ProviderState(
            up=bool(item["ready"]),
            window_room=max(0, item["window"] - item["in_flight"]),
            gate=item.get("gate", "closed"),
        )
        for name, item in live.items()
    }


class Limiter(Protocol):
    @property
    def rate(self) -> float: ...

    def backlog(self) -> int: ...


class Router:
    def __init__(
        self,
        table: RouteTable,
        providers: Mapping[str, Provider],
        limiters: Mapping[str, Limiter],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self._providers = providers
        self._limiters = limiters
        self._clock = clock
        self.breakers: dict[str, Breaker] = {name: Breaker() for name in providers}
        self.disabled: frozenset[str] = frozenset()  # by operators: routed as if down
        self._pending: dict[tuple[str, Outcome], int] = {}
        self._folded_at = -math.inf

    def replace_table(self, table: RouteTable) -> None:
        self.table = table
        log.info("route table replaced: %d entries", len(table.entries))

    def decide(self, message: Outbound, excluded: frozenset[str] = frozenset()) -> Decision:
        return choose(request_for(message, excluded), self.table, self.state())

    def submitting(self, decision: Decision) -> None:
        """A message goes out on the decided route now: a half-open breaker counts its
        probe here, not at the decision (a deferred decision sends nothing)."""
        if decision.probe and decision.provider is not None:
            self._update(decision.provider, lambda b, now, s: b.probe_sent(now, s))

    def state(self) -> dict[str, ProviderState]:
        self._fold_if_due()
        now, settings = self._clock(), self.table.policy.breaker
        return {
            name: ProviderState(
                up=provider.ready and name not in self.disabled,
                tokens=self._tokens(name),
                window_room=provider.capacity(),
                gate=self.breakers[name].gate(now, settings),
            )
            for name, provider in self._providers.items()
        }

    def gates(self) -> dict[str, Gate]:
        self._fold(self._clock())
        now, settings = self._clock(), self.table.policy.breaker
        return {name: breaker.gate(now, settings) for name, breaker in self.breakers.items()}

    def _tokens(self, name: str) -> float:
        limiter = self._limiters.get(name)
        if limiter is None or limiter.backlog() <= limiter.rate * _BACKLOG_S:
            return math.inf  # tokens flow: a message of any size is taken in turn
        return 0.0

    def observe_receipt(self, receipt: Receipt) -> None:
        delivered = receipt.status is ReceiptStatus.DELIVERED
        self.record(receipt.provider, "delivered" if delivered else "undelivered")

    def record(self, provider: str, outcome: Outcome) -> None:
        """Counted here and given to the breaker at most every ``_FOLD_S`` (a breaker
        update costs ~7 µs, twice per message otherwise); a breaker that is not closed
        takes each outcome at once, since the first probe's outcome decides."""
        breaker = self.breakers.get(provider)
        if breaker is None:
            return
        if breaker.phase != "closed":
            self._update(provider, lambda b, now, s: b.record(outcome, now, s))
            return
        key = (provider, outcome)
        self._pending[key] = self._pending.get(key, 0) + 1
        self._fold_if_due()

    def _fold_if_due(self) -> None:
        now = self._clock()
        if now - self._folded_at >= _FOLD_S:
            self._fold(now)

    def _fold(self, now: float) -> None:
        self._folded_at = now
        pending, self._pending = self._pending, {}
        for (provider, outcome), n in pending.items():
            self._update(provider, lambda b, t, s, o=outcome, k=n: b.record(o, t, s, k))

    def _update(self, provider: str, change: Callable[..., Breaker]) -> None:
        breaker = self.breakers.get(provider)
        if breaker is None:
            return
        updated = change(breaker, self._clock(), self.table.policy.breaker)
        if updated.phase != breaker.phase:
            log.warning("provider %s breaker %s -> %s", provider, breaker.phase, updated.phase)
        self.breakers[provider] = updated
