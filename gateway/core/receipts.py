"""How receipts become message states (pure).

A receipt names a provider's id for one part. Ids are compared in a canonical form;
where a provider is known to answer in one base and report in another (hex submit
responses, decimal receipts), both sides are turned into the same decimal key. With
no bases configured ("auto"), a receipt is matched on its exact form first and then
on its hex/decimal counterparts.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.lifecycle import State
from providers.base import ReceiptStatus
from providers.receipts import canonical_id, id_candidates

RECEIPT_STATES: dict[ReceiptStatus, State] = {
    ReceiptStatus.DELIVERED: State.DELIVERED,
    ReceiptStatus.UNDELIVERABLE: State.UNDELIVERABLE,
    ReceiptStatus.EXPIRED: State.EXPIRED,
    ReceiptStatus.REJECTED: State.REJECTED,
    ReceiptStatus.UNKNOWN: State.UNDELIVERABLE,  # SMPP's UNKNOWN is final: never delivered
}


@dataclass(frozen=True, slots=True)
class IdForms:
    """How a provider writes ids: 0 = auto, else the base of submit responses / receipts."""

    submit_base: int = 0
    receipt_base: int = 0


AUTO = IdForms()


def _in_base(raw: str, base: int) -> str | None:
    try:
        return str(int(canonical_id(raw), base))
    except ValueError:
        return None


def part_key(provider_message_id: str, forms: IdForms = AUTO) -> str:
    """The key a submitted part is stored under."""
    if forms.submit_base:
        return _in_base(provider_message_id, forms.submit_base) or canonical_id(provider_message_id)
    return canonical_id(provider_message_id)


def receipt_keys(provider_message_id: str, forms: IdForms = AUTO) -> tuple[str, ...]:
    """The keys a receipt may match, best first."""
    if forms.receipt_base:
        key = _in_base(provider_message_id, forms.receipt_base)
        return (key,) if key else (canonical_id(provider_message_id),)
    return id_candidates(provider_message_id)


def early_keys(part_id: str, forms: IdForms = AUTO) -> tuple[str, ...]:
    """Keys under which an early receipt for this part may be waiting."""
    if forms.submit_base:
        return (part_key(part_id, forms),)
    return id_candidates(part_id)


def receipt_state(status: ReceiptStatus) -> State | None:
    """The final state a receipt reports, or None for an intermediate one (ENROUTE…)."""
    return RECEIPT_STATES.get(status)


def message_outcome(parts: int, delivered: int, first_failure: State | None) -> State | None:
    """A message is delivered when every part is; one failed part decides its failure."""
    if first_failure is not None:
        return first_failure
    return State.DELIVERED if delivered >= parts else None
