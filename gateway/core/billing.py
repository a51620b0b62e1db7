"""Billing decisions (pure): what each request may cost, in arrival order, all or nothing.

The route, and so the price, is chosen at dispatch; at accept each message of a billed
client is *held* for the dearest route that may carry it (parts × the highest eligible
price). The accept writer locks the billed clients' rows and calls ``decide`` with the
batch's requests in arrival order: a request whose holds would take a balance below
−credit_limit is refused whole (402); the others are debited. A message whose
``client_ref`` is already stored, or was accepted earlier in the batch, is a duplicate:
answered with the stored message, never charged twice.

A hold is settled once, in the transaction that records how the message ended: at
submission the client gets ``hold − price`` back; a message that ends without being
submitted (failed, expired, rejected before a provider took it) gets the whole hold
back. Every change to a balance is a ledger ``Entry``, so ``balance = Σ amount``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Account:
    """A billed client's money: ``balance`` already has the open holds taken off."""

    balance: Decimal
    credit_limit: Decimal = ZERO
    held: Decimal = ZERO  # holds of messages not settled yet

    @property
    def available(self) -> Decimal:
        return self.balance + self.credit_limit

    def debit(self, amount: Decimal) -> Account:
        return replace(self, balance=self.balance - amount)


@dataclass(frozen=True, slots=True)
class Item:
    """One message of a request, as billing sees it."""

    client_id: int
    hold: Decimal
    ref: str | None = None  # client_ref: the idempotency key


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    needed: Decimal = ZERO  # refused: what the request would hold for the short client
    available: Decimal = ZERO  # refused: what that client had


@dataclass(frozen=True, slots=True)
class Decision:
    verdicts: tuple[Verdict, ...]  # one per request, in order
    accounts: Mapping[int, Account]  # after the accepted requests' debits


ACCEPTED = Verdict(True)


def decide(
    accounts: Mapping[int, Account],
    requests: Sequence[Sequence[Item]],
    stored_refs: Set[tuple[int, str]],
) -> Decision:
    """Walk the requests in arrival order; clients absent from ``accounts`` are not billed."""
    balances = dict(accounts)
    seen = set(stored_refs)
    verdicts = []
    for items in requests:
        costs, keys = _costs(items, balances, seen)
        verdict = _verdict(costs, balances)
        if verdict.accepted:
            seen |= keys
            for client_id, cost in costs.items():
                balances[client_id] = balances[client_id].debit(cost)
        verdicts.append(verdict)
    return Decision(tuple(verdicts), balances)


def _costs(
    items: Sequence[Item], accounts: Mapping[int, Account], seen: Set[tuple[int, str]]
) -> tuple[dict[int, Decimal], set[tuple[int, str]]]:
    """What the request costs each billed client, duplicates free, and the keys it adds."""
    costs: dict[int, Decimal] = {}
    keys: set[tuple[int, str]] = set()
    for item in items:
        if item.client_id not in accounts:
            continue
        key = (item.client_id, item.ref) if item.ref is not None else None
        if key is not None and (key in seen or key in keys):
            continue
        if key is not None:
            keys.add(key)
        costs[item.client_id] = costs.get(item.client_id, ZERO) + item.hold
    return costs, keys


def _verdict(costs: Mapping[int, Decimal], accounts: Mapping[int, Account]) -> Verdict:
    # A request that costs nothing (all duplicates) passes even on an overdrawn account:
    # an idempotent retry must get the answer the first attempt got.
    for client_id, cost in sorted(costs.items()):
        available = accounts[client_id].available
        if cost > 0 and cost > available:
            return Verdict(False, cost, available)
    return ACCEPTED


class Reason(enum.StrEnum):
    TOPUP = "topup"
    HOLD = "hold"
    SETTLE = "settle"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger line and its effect on the client's row: balance += amount, held += held."""

    client_id: int
    amount: Decimal
    reason: Reason
    message_id: int | None = None
    held: Decimal = ZERO


def hold(client_id: int, message_id: int, amount: Decimal) -> Entry:
    return Entry(client_id, -amount, Reason.HOLD, message_id, amount)


def settle(client_id: int, message_id: int, held: Decimal, price: Decimal) -> Entry:
    """Submitted: the hold becomes the price. A price above the hold (routes changed
    since accept) is charged too: the provider charges us for it."""
    return Entry(client_id, held - price, Reason.SETTLE, message_id, -held)


def refund(client_id: int, message_id: int, held: Decimal) -> Entry:
    """Ended without a provider taking it: nothing was spent."""
    return Entry(client_id, held, Reason.REFUND, message_id, -held)


def topup(client_id: int, amount: Decimal) -> Entry:
    return Entry(client_id, amount, Reason.TOPUP)


@dataclass(frozen=True, slots=True)
class Limits:
    """A client's intake limits, in messages (a batch of 500 counts 500); None: unlimited.

    ``billed`` False says the client had no balance when last read: its requests skip
    the funds transaction altogether (a client billed since then is billed once the
    cached value expires). True means: ask the database."""

    tps: int | None = None
    daily_quota: int | None = None
    billed: bool = True

    @property
    def unlimited(self) -> bool:
        """No TPS and no daily quota: nothing to count in Redis."""
        return self.tps is None and self.daily_quota is None


def next_utc_midnight(now: datetime) -> datetime:
    """When a daily quota resets."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
