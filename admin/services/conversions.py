"""Conversions: find each one's contact, attribute it to a campaign, store it once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import aiopg

from admin.adapters import attribution_store
from admin.adapters.attribution_store import ConversionRow, Stored
from admin.core.attribution import CONVERSION_STATES, Outcome, attribute_all
from admin.core.conversions import Conversion


@dataclass(frozen=True, slots=True)
class Unknown:
    """A conversion whose contact the admin does not have."""

    index: int
    field: str


async def record(
    pool: aiopg.Pool, items: Sequence[Conversion], window: timedelta, source: str
) -> tuple[list[tuple[int, Stored]], list[Unknown]]:
    """Store the conversions of known contacts (by index), and say which were unknown."""
    contacts = await _contacts(pool, items)
    known = [(i, c, contacts[i]) for i, c in enumerate(items) if i in contacts]
    unknown = [Unknown(i, "contact_id" if c.phone is None else "phone")
               for i, c in enumerate(items) if i not in contacts]  # fmt: skip
    if not known:
        return [], unknown
    outcomes = [Outcome(contact, c.at) for _, c, contact in known]
    touches = await attribution_store.touches(
        pool, [o.contact_id for o in outcomes], [o.at for o in outcomes], window
    )
    won = attribute_all(outcomes, touches, window, CONVERSION_STATES)
    rows = [
        ConversionRow(c.external_id, contact, c.event, c.value, c.currency, c.at, touch)
        for (_, c, contact), touch in zip(known, won, strict=True)
    ]
    stored = await attribution_store.save_conversions(pool, rows, source)
    return [(i, s) for (i, _, _), s in zip(known, stored, strict=True)], unknown


async def _contacts(pool: aiopg.Pool, items: Sequence[Conversion]) -> dict[int, int]:
    """Index of each conversion → its contact's id, for those the admin has."""
    phones = [c.phone for c in items if c.phone is not None]
    ids = [c.contact_id for c in items if c.contact_id is not None]
    by_phone = await attribution_store.contacts_by_phone(pool, phones) if phones else {}
    existing = await attribution_store.known_contacts(pool, ids) if ids else set()
    found = {}
    for index, c in enumerate(items):
        if c.phone is not None and c.phone in by_phone:
            found[index] = by_phone[c.phone]
        elif c.contact_id is not None and c.contact_id in existing:
            found[index] = c.contact_id
    return found
