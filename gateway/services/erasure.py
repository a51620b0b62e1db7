"""Erase one person's data on request: PostgreSQL in one transaction, then Redis.

PostgreSQL first, so that the record is clean and audited even if Redis is down; the
Redis pass is idempotent, and running the erasure again finishes it (the audit then has
two rows). Only the masked number is ever logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiopg
import redis.asyncio as aioredis

from gateway.adapters import erasure_store, redis_erasure
from gateway.core.erasure import Subject

log = logging.getLogger("gateway.erasure")


@dataclass(frozen=True, slots=True)
class Erasure:
    audit_id: int
    database: dict[str, int]
    redis: dict[str, int]


async def erase(
    pool: aiopg.Pool,
    redis: aioredis.Redis,
    number: str,
    actor: str,
    reason: str | None = None,
) -> Erasure:
    """``number`` in E.164 (validated by the caller)."""
    subject = Subject(number)
    audit_id, database = await erasure_store.erase(pool, subject, actor, reason)
    log.info("erasure %d of %s by %s: %s", audit_id, subject.masked, actor, database)
    in_redis = await redis_erasure.erase(redis, subject)
    log.info("erasure %d in Redis: %s", audit_id, in_redis)
    return Erasure(audit_id, database, in_redis)
