"""The admin's audit log: every read of personal data and every change, append-only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiopg

from gateway.adapters.pg import execute, fetch


@dataclass(frozen=True)
class Entry:
    user_id: int | None
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]
    ip: str


async def write(pool: aiopg.Pool, entry: Entry) -> None:
    await execute(
        pool,
        "INSERT INTO admin.audit (user_id, actor, action, target, detail, ip) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (
            entry.user_id,
            entry.actor,
            entry.action,
            entry.target,
            json.dumps(entry.detail, default=str),
            entry.ip,
        ),
    )


async def recent(
    pool: aiopg.Pool, limit: int = 200, before: int | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    rows = await fetch(
        pool,
        "SELECT id, at, actor, action, target, detail, ip FROM admin.audit "
        "WHERE (%s::bigint IS NULL OR id < %s) AND (%s::text IS NULL OR action LIKE %s) "
        "ORDER BY id DESC LIMIT %s",
        (before, before, action, f"{action}%" if action else None, limit),
    )
    keys = ("id", "at", "actor", "action", "target", "detail", "ip")
    return [dict(zip(keys, row, strict=True)) for row in rows]
