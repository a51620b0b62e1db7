"""Message templates in ``admin.templates``: create, read, update, delete."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiopg
import psycopg2.errors

from gateway.adapters.pg import execute, fetch

_COLUMNS = "id, name, text, defaults, transliterate, track_links, created_by, updated_at"


_USED_BY = (
    "SELECT id FROM admin.campaigns WHERE variants @> %s::jsonb "
    "AND state NOT IN ('finished', 'cancelled') ORDER BY id LIMIT 20"
)


class TemplateInUse(Exception):
    """Campaigns that may still send use the template."""

    def __init__(self, campaign_ids: list[int]) -> None:
        super().__init__(f"used by campaigns {campaign_ids}")
        self.campaign_ids = campaign_ids


class DuplicateName(Exception):
    """Another template already has this name (names are unique, case aside)."""


@dataclass(frozen=True, slots=True)
class TemplateDraft:
    """What an editor saves."""

    name: str
    text: str
    defaults: Mapping[str, str]
    transliterate: bool = False
    track_links: bool = False


@dataclass(frozen=True, slots=True)
class TemplateRow:
    id: int
    name: str
    text: str
    defaults: Mapping[str, str]
    transliterate: bool
    track_links: bool
    created_by: int | None = None
    updated_at: Any = None


async def create_template(pool: aiopg.Pool, draft: TemplateDraft, user_id: int | None) -> int:
    sql = (
        "INSERT INTO admin.templates (name, text, defaults, transliterate, track_links, "
        "created_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
    )
    rows = await _unique(pool, sql, (*_values(draft), user_id))
    return int(rows[0][0])


async def update_template(pool: aiopg.Pool, template_id: int, draft: TemplateDraft) -> bool:
    sql = (
        "UPDATE admin.templates SET name = %s, text = %s, defaults = %s, transliterate = %s, "
        "track_links = %s, updated_at = now() WHERE id = %s RETURNING id"
    )
    return bool(await _unique(pool, sql, (*_values(draft), template_id)))


async def delete_template(pool: aiopg.Pool, template_id: int) -> bool:
    """Delete, unless a campaign that may still send uses it (raises ``TemplateInUse``)."""
    users = await fetch(pool, _USED_BY, (json.dumps([{"template_id": template_id}]),))
    if users:
        raise TemplateInUse([int(row[0]) for row in users])
    return await execute(pool, "DELETE FROM admin.templates WHERE id = %s", (template_id,)) > 0


async def get_template(pool: aiopg.Pool, template_id: int) -> TemplateRow | None:
    rows = await fetch(
        pool, f"SELECT {_COLUMNS} FROM admin.templates WHERE id = %s", (template_id,)
    )
    return _row(rows[0]) if rows else None


async def list_templates(pool: aiopg.Pool, limit: int = 500) -> list[TemplateRow]:
    rows = await fetch(
        pool, f"SELECT {_COLUMNS} FROM admin.templates ORDER BY lower(name) LIMIT %s", (limit,)
    )
    return [_row(row) for row in rows]


async def _unique(pool: aiopg.Pool, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    try:
        return await fetch(pool, sql, params)
    except psycopg2.errors.UniqueViolation:
        raise DuplicateName from None


def _values(draft: TemplateDraft) -> tuple[Any, ...]:
    defaults = json.dumps(dict(draft.defaults), ensure_ascii=False)
    return (draft.name, draft.text, defaults, draft.transliterate, draft.track_links)


def _row(row: tuple[Any, ...]) -> TemplateRow:
    template_id, name, text, defaults, transliterate, track_links, created_by, updated_at = row
    return TemplateRow(
        template_id, name, text, dict(defaults), transliterate, track_links, created_by, updated_at
    )
