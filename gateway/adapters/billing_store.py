"""Balances and the ledger (PostgreSQL); per-client intake limits (Redis).

PostgreSQL. ``lock_accounts`` takes the billed clients' rows in id order; ``post`` applies
a batch of ledger entries with one INSERT over arrays and one UPDATE, whatever the batch
size, after locking the same way. Every transaction that changes a balance locks its
message rows first and client rows after, in id order each, so none deadlock; the accept
writer locks clients before inserting, which waits on no message row.

Redis. One hash per client, ``<prefix>:{c<id>}:limits`` (the hash tag keeps it on one
Cluster shard), holds a token bucket for the TPS and the count of messages taken today.
A Lua script checks and takes both at once: one round trip per request, all or nothing,
atomic across processes, with days and seconds from the Redis clock so every process
agrees. The bucket holds one second's worth; a request larger than that may still take
a full bucket and leave a debt that later requests wait out, so a batch of 500 passes at
tps 100 and the average rate still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiopg
import redis.asyncio as aioredis

from gateway.adapters.pg import fetch
from gateway.adapters.pg_arrays import int_array, numeric_array, text_array
from gateway.core.billing import Account, Entry, Limits
from gateway.core.errors import QuotaExceeded, RateLimited

LOCK_ACCOUNTS_SQL = """
SELECT id, balance, credit_limit, held FROM clients
WHERE id = ANY(%s::bigint[]) AND balance IS NOT NULL ORDER BY id FOR UPDATE
"""


async def lock_accounts(cur: Any, client_ids: Sequence[int]) -> dict[int, Account]:
    """Inside a transaction: lock the billed clients among these; returns their accounts."""
    await cur.execute(LOCK_ACCOUNTS_SQL, (int_array(sorted(set(client_ids))),))
    return {r[0]: Account(r[1], r[2], r[3]) for r in await cur.fetchall()}


POST_SQL = """
WITH e AS (
  SELECT * FROM unnest(%s::bigint[], %s::numeric[], %s::text[], %s::bigint[], %s::numeric[])
    AS e(client_id, amount, reason, message_id, held)
), lines AS (
  INSERT INTO ledger (client_id, amount, reason, message_id)
  SELECT client_id, amount, reason, message_id FROM e WHERE amount <> 0
)
UPDATE clients c SET balance = c.balance + s.amount, held = c.held + s.held
FROM (SELECT client_id, sum(amount) AS amount, sum(held) AS held FROM e GROUP BY client_id) s
WHERE c.id = s.client_id AND c.balance IS NOT NULL
"""


async def post(cur: Any, entries: Sequence[Entry], locked: bool = False) -> None:
    """Inside a transaction: write the ledger lines and apply them to the balances.
    ``locked``: the caller holds the clients' rows already (``lock_accounts``)."""
    entries = [e for e in entries if e.amount or e.held]
    if not entries:
        return
    if not locked:
        await cur.execute(LOCK_ACCOUNTS_SQL, (int_array(sorted({e.client_id for e in entries})),))
    await cur.execute(
        POST_SQL,
        (
            int_array([e.client_id for e in entries]),
            numeric_array([e.amount for e in entries]),
            text_array([e.reason.value for e in entries]),
            int_array([e.message_id for e in entries]),
            numeric_array([e.held for e in entries]),
        ),
    )


TOPUP_SQL = """
WITH up AS (
  UPDATE clients SET balance = COALESCE(balance, 0) + %s WHERE id = %s
  RETURNING id, balance, credit_limit, held
), line AS (
  INSERT INTO ledger (client_id, amount, reason) SELECT id, %s, 'topup' FROM up
)
SELECT balance, credit_limit, held FROM up
"""


async def topup(pool: aiopg.Pool, client_id: int, amount: Decimal) -> Account | None:
    """Add to a client's balance (a negative amount corrects one); a client not billed
    so far starts being billed from zero. None: no such client."""
    rows = await fetch(pool, TOPUP_SQL, (amount, client_id, amount))
    return Account(*rows[0]) if rows else None


async def account(pool: aiopg.Pool, client_id: int) -> Account | None:
    """The client's account now; None when the client is not billed."""
    rows = await fetch(
        pool,
        "SELECT balance, credit_limit, held FROM clients WHERE id = %s AND balance IS NOT NULL",
        (client_id,),
    )
    return Account(*rows[0]) if rows else None


# KEYS[1] the client's hash; ARGV: messages, tps (0: none), daily quota (-1: none).
# Replies {0, used today, day} taken; {1, seconds} over the tps; {2, seconds} over the quota.
ADMIT_LUA = """
local n, rate, quota = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local day = math.floor(now / 86400)
local h = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'day', 'used')
local used = 0
if tonumber(h[3]) == day then used = tonumber(h[4]) end
if quota >= 0 and used + n > quota then
  return {2, tostring((day + 1) * 86400 - now)}
end
local tokens = 0
if rate > 0 then
  tokens = rate
  if h[1] then
    tokens = math.min(rate, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * rate)
  end
  local need = math.min(n, rate)
  if tokens < need then return {1, tostring((need - tokens) / rate)} end
  tokens = tokens - n
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now),
           'day', day, 'used', used + n)
redis.call('EXPIRE', KEYS[1], 172800)
return {0, used + n, day}
"""

# KEYS[1] the client's hash; ARGV: messages, tps (0: leave the bucket), the day taken.
GIVE_BACK_LUA = """
local n, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'day', 'used')
if h[2] == ARGV[3] then
  redis.call('HSET', KEYS[1], 'used', math.max(0, tonumber(h[3]) - n))
end
if rate > 0 and h[1] then
  redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(rate, tonumber(h[1]) + n)))
end
return 0
"""

USED_LUA = """
local h = redis.call('HMGET', KEYS[1], 'day', 'used')
local t = redis.call('TIME')
if tonumber(h[1]) == math.floor(tonumber(t[1]) / 86400) then return tonumber(h[2]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Taken:
    """What a request took from its client's limits, to give back if it is refused."""

    client_id: int
    limits: Limits
    messages: int
    day: int


class ClientLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str = "smsgw") -> None:
        self._prefix = prefix
        self._admit = client.register_script(ADMIT_LUA)
        self._give_back = client.register_script(GIVE_BACK_LUA)
        self._used = client.register_script(USED_LUA)

    def key(self, client_id: int) -> str:
        return f"{self._prefix}:{{c{client_id}}}:limits"

    async def admit(self, client_id: int, limits: Limits, messages: int) -> Taken:
        """Take ``messages`` from the client's TPS and daily quota, or raise
        RateLimited / QuotaExceeded (with the seconds to wait) and take nothing."""
        tps, quota = limits.tps or 0, -1 if limits.daily_quota is None else limits.daily_quota
        reply = await self._admit(keys=[self.key(client_id)], args=[messages, tps, quota])
        if reply[0] == 1:
            raise RateLimited(tps, float(reply[1]))
        if reply[0] == 2:
            raise QuotaExceeded(quota, float(reply[1]))
        return Taken(client_id, limits, messages, int(reply[2]))

    async def give_back(self, taken: Taken, messages: int, tokens: bool = True) -> None:
        """Return counts taken by a request that was then refused (``tokens``), or only
        the quota of messages that turned out to be duplicates."""
        tps = (taken.limits.tps or 0) if tokens else 0
        await self._give_back(keys=[self.key(taken.client_id)], args=[messages, tps, taken.day])

    async def used_today(self, client_id: int) -> int:
        return int(await self._used(keys=[self.key(client_id)]))
