"""OTP challenges and alerts in PostgreSQL; the pumping counters in Redis.

PostgreSQL. A check locks its challenge's row (``SELECT … FOR UPDATE``), lets
``otp.check`` decide, and writes the new tries and state in the same transaction: two
checks of one challenge are serialised, so a code verifies once and tries never pass
``max_tries``, whichever process answers. Creating a challenge supersedes the client's
pending one to the same number in the same statement.

Redis. The counters are sliding logs (a sorted set of send ids scored by the Redis
clock, in ms) and, for the daily country cap, a plain counter per UTC day. One Lua
script checks every counter of a send and adds to all of them or to none: a refused
send costs nothing, so a flood cannot push a counter past its limit and a legitimate
send is never charged for an attacker's refused ones. The GCRA buckets of
``redis_limiter`` and ``billing_store`` are rates, not "N per window", hence this one.
A client's keys share one hash tag (``{otp:c<id>}``): one Cluster shard, one script.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiopg
import redis.asyncio as aioredis

from gateway.adapters.pg import execute, fetch
from gateway.core.otp import Challenge, Checked, Counter, State, check

INSERT_SQL = """
WITH new AS (
  INSERT INTO otp_challenges
      (id, client_id, destination, client_ref, salt, code_hash, expires_at, max_tries)
  VALUES (%(id)s, %(client)s, %(to)s, %(ref)s, %(salt)s, %(hash)s,
          now() + make_interval(secs => %(ttl)s), %(tries)s)
  ON CONFLICT (client_id, client_ref) WHERE client_ref IS NOT NULL DO NOTHING
  RETURNING id, expires_at
), old AS (
  UPDATE otp_challenges SET state = 'superseded', done_at = now()
  WHERE client_id = %(client)s AND destination = %(to)s AND state = 'pending'
    AND EXISTS (SELECT 1 FROM new)
)
SELECT id, expires_at FROM new
"""


@dataclass(frozen=True, slots=True)
class NewChallenge:
    id: int
    client_id: int
    destination: str
    client_ref: str | None
    salt: bytes
    code_hash: bytes
    ttl_s: int
    max_tries: int


@dataclass(frozen=True, slots=True)
class Stored:
    id: int
    destination: str
    expires_at: datetime
    message_id: int | None = None


async def insert(pool: aiopg.Pool, c: NewChallenge) -> datetime | None:
    """The new challenge's expiry; None when its client_ref was taken meanwhile."""
    params = {
        "id": c.id,
        "client": c.client_id,
        "to": c.destination,
        "ref": c.client_ref,
        "salt": c.salt,
        "hash": c.code_hash,
        "ttl": c.ttl_s,
        "tries": c.max_tries,
    }
    rows = await fetch(pool, INSERT_SQL, params)  # type: ignore[arg-type]
    return rows[0][1] if rows else None


async def by_ref(pool: aiopg.Pool, client_id: int, client_ref: str) -> Stored | None:
    rows = await fetch(
        pool,
        "SELECT id, destination, expires_at, message_id FROM otp_challenges "
        "WHERE client_id = %s AND client_ref = %s",
        (client_id, client_ref),
    )
    return Stored(*rows[0]) if rows else None


async def attach_message(pool: aiopg.Pool, challenge_id: int, message_id: int) -> None:
    await execute(
        pool, "UPDATE otp_challenges SET message_id = %s WHERE id = %s", (message_id, challenge_id)
    )


async def discard(pool: aiopg.Pool, challenge_id: int) -> None:
    """A challenge whose message was refused: it was never sent, so nothing checks it."""
    await execute(pool, "DELETE FROM otp_challenges WHERE id = %s", (challenge_id,))


LOCK_SQL = """
SELECT id, salt, code_hash, expires_at, tries, max_tries, state, now()
FROM otp_challenges WHERE id = %s AND client_id = %s FOR UPDATE
"""
SAVE_SQL = """
UPDATE otp_challenges SET tries = %s, state = %s,
    done_at = CASE WHEN %s = 'pending' THEN NULL ELSE now() END
WHERE id = %s
"""


async def check_code(
    pool: aiopg.Pool, client_id: int, challenge_id: int, code: str, pepper: bytes
) -> Checked | None:
    """Decide and record one check; None when the client has no such challenge."""
    async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
        await cur.execute(LOCK_SQL, (challenge_id, client_id))
        row = await cur.fetchone()
        if row is None:
            return None
        challenge = _challenge(row)
        checked = check(challenge, code, row[7], pepper)
        if checked.challenge != challenge:
            new = checked.challenge
            await cur.execute(SAVE_SQL, (new.tries, new.state.value, new.state.value, new.id))
        return checked


def _challenge(row: Sequence[Any]) -> Challenge:
    return Challenge(
        id=row[0],
        salt=bytes(row[1]),
        code_hash=bytes(row[2]),
        expires_at=row[3],
        tries=row[4],
        max_tries=row[5],
        state=State(row[6]),
    )


# --- alerts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    client_id: int
    reason: str
    country: str
    subject: str  # masked
    limit: int
    window_s: int


async def add_alert(pool: aiopg.Pool, a: Alert) -> None:
    await execute(
        pool,
        "INSERT INTO otp_alerts (client_id, reason, country, subject, lim, window_s) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (a.client_id, a.reason, a.country, a.subject, a.limit, a.window_s),
    )


async def alerts(pool: aiopg.Pool, client_id: int, limit: int) -> list[dict[str, Any]]:
    """The client's latest alerts, newest first."""
    rows = await fetch(
        pool,
        "SELECT id, at, reason, country, subject, lim, window_s FROM otp_alerts "
        "WHERE client_id = %s ORDER BY id DESC LIMIT %s",
        (client_id, limit),
    )
    names = ("id", "at", "limit", "country", "subject", "value", "window_s")
    return [dict(zip(names, row, strict=True)) for row in rows]


# --- the pumping counters (Redis) -------------------------------------------------------

# KEYS: the counters; ARGV[1] the send's id, then (limit, seconds) per key, seconds 0 for
# a day counter. Replies {0, 0} counted in all; {i, ms} refused by KEYS[i] (ms -1: a day).
ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  local limit, window = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1]) * 1000
  if window > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
    local n = redis.call('ZCARD', KEYS[i])
    if n >= limit then
      local oldest = redis.call('ZRANGE', KEYS[i], n - limit, n - limit, 'WITHSCORES')
      return {i, math.max(1, tonumber(oldest[2]) + window - now)}
    end
  elseif tonumber(redis.call('GET', KEYS[i]) or '0') >= limit then
    return {i, -1}
  end
end
for i = 1, #KEYS do
  local window = tonumber(ARGV[2 * i + 1]) * 1000
  if window > 0 then
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], window)
  else
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], 172800)
  end
end
return {0, 0}
"""

GIVE_BACK_LUA = """
for i = 1, #KEYS do
  if ARGV[i + 1] == '0' then
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Refusal:
    counter: Counter
    retry_after_s: float
    first: bool  # the first refusal by this counter in its window: raise an alert


class PumpingCounters:
    def __init__(self, redis: aioredis.Redis, prefix: str = "smsgw") -> None:
        self._redis = redis
        self._prefix = prefix
        self._admit = redis.register_script(ADMIT_LUA)
        self._give_back = redis.register_script(GIVE_BACK_LUA)

    def key(self, client_id: int, c: Counter, day: int) -> str:
        """The subject is hashed: no phone number or IP in a key name."""
        period = c.seconds or f"d{day}"
        subject = hashlib.blake2b(c.subject.encode(), digest_size=12).hexdigest()
        return f"{self._prefix}:{{otp:c{client_id}}}:{c.reason.value}:{subject}:{period}"

    async def admit(
        self, client_id: int, counters: Sequence[Counter], send_id: int, country: str
    ) -> Refusal | None:
        """Count one send in every counter, or in none and say which refused it (and
        count the refusal for ``smsgw_otp_blocked_total{reason, country}``)."""
        now = time.time()
        keys = [self.key(client_id, c, int(now // 86400)) for c in counters]
        args: list[Any] = [send_id]
        for c in counters:
            args += [c.limit, c.seconds]
        index, wait_ms = await self._admit(keys=keys, args=args)
        if index == 0:
            return None
        counter = counters[int(index) - 1]
        wait = int(wait_ms) / 1000 if int(wait_ms) >= 0 else 86400 - now % 86400
        first = await self._refused(keys[int(index) - 1], f"{counter.reason.value}|{country}", wait)
        return Refusal(counter, wait, first)

    async def _refused(self, key: str, label: str, wait: float) -> bool:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{key}:alerted", 1, nx=True, ex=max(1, int(wait) + 1))
            pipe.hincrby(self.blocked_key, label, 1)
            first, _ = await pipe.execute()
        return bool(first)

    async def give_back(self, client_id: int, counters: Sequence[Counter], send_id: int) -> None:
        """Uncount a send that was refused after ``admit`` (its SMS never left)."""
        day = int(time.time() // 86400)
        keys = [self.key(client_id, c, day) for c in counters]
        await self._give_back(keys=keys, args=[send_id, *(c.seconds for c in counters)])

    @property
    def blocked_key(self) -> str:
        return f"{self._prefix}:otp:blocked"

    async def blocked(self) -> dict[tuple[str, str], int]:
        """``smsgw_otp_blocked_total`` over every process: (reason, country) → count."""
        raw = await self._redis.hgetall(self.blocked_key)
        found: dict[tuple[str, str], int] = {}
        for field, value in raw.items():
            text = field.decode() if isinstance(field, bytes) else field
            reason, _, country = text.partition("|")
            found[(reason, country)] = int(value)
        return found
