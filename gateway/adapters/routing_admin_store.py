"""The shared routing override in PostgreSQL (migration 0008): routes document, disabled
providers, and one version that every change bumps in the same statement, so that a
process polling the version alone learns of any change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiopg

from gateway.adapters.pg import fetch
from gateway.core.ids import EPOCH_MS, NODE_BITS, SEQ_BITS
from gateway.core.lifecycle import State


@dataclass(frozen=True, slots=True)
class RoutingOverride:
    version: int
    document: Mapping[str, Any] | None  # None: the config file's routes apply
    disabled: frozenset[str]
    updated_at: datetime | None = None
    updated_by: str | None = None


NONE = RoutingOverride(-1, None, frozenset())  # before the first read

_LOAD_SQL = """
SELECT r.version, r.document, r.updated_at, r.updated_by,
       ARRAY(SELECT name FROM disabled_providers ORDER BY name)
FROM routing_admin r
"""
_BUMP = "UPDATE routing_admin SET version = version + 1, updated_at = now(), updated_by = %s"


async def version(pool: aiopg.Pool) -> int:
    rows = await fetch(pool, "SELECT version FROM routing_admin")
    return int(rows[0][0]) if rows else NONE.version  # the row gone: no override


async def load(pool: aiopg.Pool) -> RoutingOverride:
    rows = await fetch(pool, _LOAD_SQL)
    if not rows:
        return NONE
    version_, document, at, by, disabled = rows[0]
    return RoutingOverride(int(version_), document, frozenset(disabled), at, by)


async def put_document(
    pool: aiopg.Pool, document: Mapping[str, Any] | None, expected: int | None, by: str | None
) -> int | None:
    """Store a checked document (None: back to the file's routes); the new version, or
    None when ``expected`` is given and another change came first."""
    rows = await fetch(
        pool,
        f"{_BUMP}, document = %s::jsonb "
        "WHERE %s::bigint IS NULL OR version = %s::bigint RETURNING version",
        (by, None if document is None else json.dumps(document), expected, expected),
    )
    return int(rows[0][0]) if rows else None


async def set_disabled(pool: aiopg.Pool, name: str, disabled: bool, by: str | None) -> int:
    """Disable or enable a provider; the new version."""
    if disabled:
        change = "INSERT INTO disabled_providers (name, disabled_by) VALUES (%s, %s) "
        change += "ON CONFLICT (name) DO NOTHING RETURNING name"
        params: tuple[Any, ...] = (name, by)
    else:
        change, params = "DELETE FROM disabled_providers WHERE name = %s RETURNING name", (name,)
    sql = f"WITH change AS ({change}) {_BUMP} RETURNING version"
    return int((await fetch(pool, sql, (*params, by)))[0][0])


# Outcomes per provider of the messages accepted since an id (ids grow with time, and the
# messages table is partitioned by id: the range prunes old partitions).
_SUBMITTED, _DELIVERED = int(State.SUBMITTED), int(State.DELIVERED)
_UNDELIVERED = ", ".join(str(int(s)) for s in (State.UNDELIVERABLE, State.EXPIRED, State.REJECTED))
_DELIVERY_SQL = f"""
SELECT provider,
       count(*) FILTER (WHERE state >= {_SUBMITTED}),
       count(*) FILTER (WHERE state = {_DELIVERED}),
       count(*) FILTER (WHERE state IN ({_UNDELIVERED})),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - submitted_at))
           FILTER (WHERE state = {_DELIVERED})
FROM messages WHERE id >= %s AND provider IS NOT NULL GROUP BY provider
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    submitted: int  # submitted or further along
    delivered: int
    undelivered: int  # undeliverable, expired, rejected
    median_delivery_s: float | None

    @property
    def rate(self) -> float | None:
        """Delivered share of the receipts in (None before any)."""
        done = self.delivered + self.undelivered
        return self.delivered / done if done else None


async def delivery(pool: aiopg.Pool, since_ms: int) -> dict[str, Delivery]:
    rows = await fetch(pool, _DELIVERY_SQL, (first_id_at(since_ms),))
    return {
        name: Delivery(int(s), int(d), int(u), None if med is None else float(med))
        for name, s, d, u, med in rows
    }


def first_id_at(ms: int) -> int:
    """The smallest message id made at or after ``ms`` (epoch milliseconds)."""
    return max(0, ms - EPOCH_MS) << (NODE_BITS + SEQ_BITS)
