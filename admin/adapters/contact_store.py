"""Contacts in PostgreSQL: batched upsert, streamed CSV import, search.

Upsert is one statement per batch over ``unnest`` arrays. It is an UPDATE of the phones
that exist, then an INSERT of the rest, in one statement (data-modifying CTEs), rather
than ``INSERT … ON CONFLICT DO UPDATE``: a value the record leaves empty must keep the
stored one, while a new row must get the column's default (subscribed, consent …), and
``ON CONFLICT`` cannot tell the two apart once the default is in ``excluded``. A phone
inserted by another import between the two halves is skipped by ``ON CONFLICT DO
NOTHING`` and counted as neither: the other import wrote it.

The CSV import parses the next chunk while the previous batch is being written, so the
parser (CPU) and PostgreSQL (the other core) work at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import aiopg

from admin.core.audience import fold, like_escape
from admin.core.contacts import Contact
from admin.core.csv_import import ContactsCsv, CsvError, RowError
from gateway.adapters.pg import fetch

BATCH = 5000  # rows per statement: its planning (~20 ms) is paid once per batch
MAX_REPORTED_ERRORS = 1000

# column, array type, how an update merges it (None: keep the stored value when empty)
_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("phone", "text", None),  # the key: never updated
    ("external_id", "text", None),
    ("first_name", "text", None),
    ("last_name", "text", None),
    ("middle_name", "text", None),
    ("email", "text", None),
    ("city", "text", None),
    ("region", "text", None),
    ("timezone", "text",
     "CASE WHEN u.timezone_derived AND NOT c.timezone_derived THEN c.timezone ELSE u.timezone END"),
    ("timezone_derived", "boolean", "u.timezone_derived AND c.timezone_derived"),
    ("gender", "text", None),
    ("birth_date", "date", None),
    ("signup_date", "date", None),
    ("source_site", "text", None),
    ("tags", "text", "CASE WHEN u.tags = '[]' THEN c.tags ELSE ARRAY(SELECT DISTINCT t FROM unnest("
                     "c.tags || ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb))) t) END"),
    ("subscribed", "boolean", None),
    ("consent", "boolean", None),
    ("consent_at", "timestamptz", None),
    ("consent_source", "text", None),
    ("last_purchase_at", "timestamptz", None),
    ("total_spend", "numeric", None),
    ("purchases", "integer", None),
    ("last_activity_at", "timestamptz", None),
    ("operator", "text", None),
    ("language", "text", None),
    ("loyalty_level", "text", None),
    ("custom", "text", "c.custom || u.custom::jsonb"),
)  # fmt: skip
_INSERTED_AS = {
    "tags": "ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb))",
    "subscribed": "coalesce(u.subscribed, true)",
    "consent": "coalesce(u.consent, false)",
    "total_spend": "coalesce(u.total_spend, 0)",
    "purchases": "coalesce(u.purchases, 0)",
    "custom": "u.custom::jsonb",
}


def _upsert_sql() -> str:
    names = [name for name, _, _ in _COLUMNS]
    arrays = ", ".join(f"%s::{kind}[]" for _, kind, _ in _COLUMNS)
    sets = ", ".join(f"{n} = {merge or f'coalesce(u.{n}, c.{n})'}" for n, _, merge in _COLUMNS[1:])
    values = ", ".join(_INSERTED_AS.get(n, f"u.{n}") for n in names)
    return f"""
WITH u AS (SELECT * FROM unnest({arrays}) AS u({", ".join(names)})),
updated AS (
    UPDATE admin.contacts c SET {sets}, updated_at = now()
    FROM u WHERE c.phone = u.phone RETURNING c.phone
),
inserted AS (
    INSERT INTO admin.contacts ({", ".join(names)})
    SELECT {values} FROM u WHERE u.phone NOT IN (SELECT phone FROM updated)
    ON CONFLICT (phone) DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated)
"""


UPSERT_SQL = _upsert_sql()


@dataclass(frozen=True, slots=True)
class Upserted:
    inserted: int = 0
    updated: int = 0


def _cell(contact: Contact, name: str) -> Any:
    value = getattr(contact, name)
    if name == "tags":
        return json.dumps(list(value), ensure_ascii=False)
    if name == "custom":
        return json.dumps(value, ensure_ascii=False)
    return value


def _arrays(contacts: Sequence[Contact]) -> list[list[Any]]:
    last = {c.phone: c for c in contacts}  # one row per phone: a batch may not touch a row twice
    return [[_cell(c, name) for c in last.values()] for name, _, _ in _COLUMNS]


async def upsert_contacts(pool: aiopg.Pool, contacts: Sequence[Contact]) -> Upserted:
    """Insert new phones, update known ones (empty values keep what is stored)."""
    if not contacts:
        return Upserted()
    rows = await fetch(pool, UPSERT_SQL, _arrays(contacts))
    return Upserted(int(rows[0][0]), int(rows[0][1]))


# ---- CSV import ------------------------------------------------------------------------------


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS
    fatal: str | None = None  # the file could not be read on from here

    def add_errors(self, errors: list[RowError]) -> None:
        self.failed += len(errors)
        room = MAX_REPORTED_ERRORS - len(self.errors)
        self.errors.extend(errors[: max(room, 0)])

    def add(self, done: Upserted) -> None:
        self.inserted += done.inserted
        self.updated += done.updated


class _Writer:
    """One batch written while the next is parsed."""

    def __init__(self, pool: aiopg.Pool, report: ImportReport) -> None:
        self.pool, self.report = pool, report
        self.pending: asyncio.Task[Upserted] | None = None

    async def write(self, contacts: list[Contact]) -> None:
        await self.wait()
        self.pending = asyncio.create_task(upsert_contacts(self.pool, contacts))

    async def wait(self) -> None:
        if self.pending is not None:
            task, self.pending = self.pending, None
            self.report.add(await task)

    async def cancel(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            await asyncio.gather(self.pending, return_exceptions=True)


async def import_csv(
    pool: aiopg.Pool, chunks: AsyncIterable[bytes], default_region: str = "RU"
) -> ImportReport:
    """Import a CSV as it streams in; bad rows are reported by line, good rows imported."""
    report, parser = ImportReport(), ContactsCsv(default_region)
    writer, batch = _Writer(pool, report), []
    try:
        async for chunk in _with_end(chunks):
            try:
                parser.feed(chunk, final=chunk == b"")
            except CsvError as exc:
                report.fatal = str(exc)
            batch += _take(parser, report)
            if len(batch) >= BATCH or report.fatal or chunk == b"":
                await writer.write(batch)
                batch = []
            if report.fatal:
                break
        await writer.wait()
    finally:
        await writer.cancel()
    report.rows = parser.rows
    return report


def _take(parser: ContactsCsv, report: ImportReport) -> list[Contact]:
    contacts, errors = parser.take()
    report.add_errors(errors)
    return [contact for _, contact in contacts]


async def _with_end(chunks: AsyncIterable[bytes]) -> AsyncIterable[bytes]:
    async for chunk in chunks:
        if chunk:
            yield chunk
    yield b""


# ---- reading ---------------------------------------------------------------------------------

COLUMNS = (*(name for name, _, _ in _COLUMNS), "created_at", "updated_at")
SELECT_COLUMNS = "c.id, " + ", ".join(f"c.{name}" for name in COLUMNS)


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A stored contact: ``fields`` holds every column (custom keys too) for templates."""

    id: int
    phone: str
    timezone: str
    fields: dict[str, Any]


def contact_row(row: Sequence[Any]) -> ContactRow:
    values = dict(zip(COLUMNS, row[1:], strict=True))
    fields = {**values["custom"], **values}  # a column wins over a custom key of its name
    return ContactRow(int(row[0]), values["phone"], values["timezone"], fields)


async def get_contact(pool: aiopg.Pool, contact_id: int) -> ContactRow | None:
    rows = await fetch(pool, f"SELECT {SELECT_COLUMNS} FROM admin.contacts c WHERE c.id = %s",
                       (contact_id,))  # fmt: skip
    return contact_row(rows[0]) if rows else None


_FOLDED = fold("%s")
SEARCH_SQL = f"""
SELECT {SELECT_COLUMNS} FROM admin.contacts c
WHERE c.id > %s AND (%s = '' OR c.phone LIKE %s OR {fold("c.first_name")} LIKE {_FOLDED}
                     OR {fold("c.last_name")} LIKE {_FOLDED} OR {fold("c.email")} LIKE {_FOLDED})
ORDER BY c.id LIMIT %s
"""


async def search_contacts(
    pool: aiopg.Pool, query: str, after_id: int = 0, limit: int = 50
) -> list[ContactRow]:
    """Contacts whose phone, name or e-mail holds ``query``, by id from ``after_id``."""
    pattern = f"%{like_escape(query.strip())}%"
    digits = "".join(ch for ch in query if ch.isdigit())
    if digits.startswith("8") and not query.strip().startswith("+"):
        digits = "7" + digits[1:]  # the Russian trunk prefix: 8 921… is +7 921…
    phone = f"%{digits}%" if digits else pattern
    params = (after_id, query.strip(), phone, pattern, pattern, pattern, limit)
    return [contact_row(r) for r in await fetch(pool, SEARCH_SQL, params)]


async def count_all(pool: aiopg.Pool) -> int:
    rows = await fetch(pool, "SELECT count(*) FROM admin.contacts")
    return int(rows[0][0])


def json_safe(value: Any) -> Any:
    """A contact value as JSON (dates as ISO text, money as text)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
