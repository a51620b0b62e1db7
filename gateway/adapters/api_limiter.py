"""Request limits at the API per key and per client IP, shared by every process.

Each limit is a GCRA bucket in Redis (the same script as the providers' TPS,
``redis_limiter.GCRA_LUA``), keyed by the SHA-256 of the API key presented (so it is
counted before the key is looked up, and an unknown key costs its sender too) and by
the client's address (IPv6 by /64). A process takes tokens in grants of ~10 ms of the
rate and remembers a refusal until its Retry-After (``gateway/core/api_limits.py``):
a request costs a Redis round trip only when a grant runs out, both buckets then in
one pipeline. If Redis cannot be reached the API is not limited (and says so in the
log, once a minute): the queue needs Redis too, so little gets in meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from gateway.adapters.failures import TRANSIENT, raise_if_cancelling
from gateway.adapters.redis_limiter import GCRA_LUA
from gateway.core.api_limits import (
    ApiLimitSettings,
    LocalGrants,
    Verdict,
    client_address,
    grant_size,
    ip_bucket,
    is_exempt,
)
from gateway.core.errors import RequestsLimited
from gateway.core.ssrf import parse_networks

log = logging.getLogger("gateway.api_limits")

_WARN_EVERY_S = 60.0
_MAX_TURNS = 10_000


@dataclass(frozen=True, slots=True)
class _Bucket:
    name: str  # "api_key" or "ip": what the 429 names
    key: str
    rate: float
    interval_us: float
    tolerance_us: float


class ApiLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str, settings: ApiLimitSettings) -> None:
        self.settings = settings
        self._prefix = prefix
        self._script = redis.register_script(GCRA_LUA)
        self._redis = redis
        self._grants = LocalGrants()
        self._exempt = parse_networks(settings.exempt)
        self._trusted = parse_networks(settings.trusted_proxies)
        self._warned_at = -_WARN_EVERY_S
        self._turns: dict[str, asyncio.Lock] = {}
        # Pure functions of their arguments (the settings are fixed), asked on every
        # request with the same few peers and keys: an address parsed three times and a
        # SHA-256 were 5 % of the API process's CPU on one-message requests.
        self.address = functools.lru_cache(maxsize=4096)(self._address)
        self._buckets = functools.lru_cache(maxsize=4096)(self._find_buckets)

    def _address(self, peer: str | None, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self._trusted)

    async def admit(self, address: str, api_key: str | None) -> None:
        """Count one request against its IP and its key, or raise RequestsLimited."""
        if not self.settings.enabled:
            return
        ask = self._local(self._buckets(address, api_key))
        if not ask:
            return
        async with AsyncExitStack() as turns:  # one ask per bucket at a time, IP first
            for bucket in ask:
                await turns.enter_async_context(self._turn(bucket.key))
            ask = self._local(ask)  # a request ahead of this one may have brought tokens
            if ask:
                await self._ask(ask, time.monotonic())

    def _local(self, buckets: Sequence[_Bucket]) -> list[_Bucket]:
        """Take a local token from each bucket; returns those that have none (ask Redis)."""
        now, ask = time.monotonic(), []
        for bucket in buckets:
            verdict = self._grants.check(bucket.key, now)
            if verdict is Verdict.REFUSED:
                raise self._refusal(bucket, self._grants.refused_for(bucket.key, now))
            if verdict is Verdict.ASK:
                ask.append(bucket)
        return ask

    def _turn(self, key: str) -> asyncio.Lock:
        """The lock of a bucket's asks: a burst of requests makes one round trip, not one
        each (a flood would otherwise take every Redis connection)."""
        if len(self._turns) >= _MAX_TURNS:
            self._turns = {k: t for k, t in self._turns.items() if t.locked()}
        return self._turns.setdefault(key, asyncio.Lock())

    def _find_buckets(self, address: str, api_key: str | None) -> tuple[_Bucket, ...]:
        s, found = self.settings, []
        if not is_exempt(address, self._exempt):
            found.append(self._bucket("ip", f"ip:{ip_bucket(address)}", s.ip_rps, s.ip_burst))
        if api_key:
            digest = hashlib.sha256(api_key.encode()).hexdigest()[:32]
            found.append(self._bucket("api_key", f"key:{digest}", s.key_rps, s.key_burst))
        return tuple(found)

    def _bucket(self, name: str, key: str, rate: float, burst: float) -> _Bucket:
        interval = 1_000_000 / rate
        redis_key = f"{self._prefix}:{{api:{key}}}"  # one slot per bucket (Cluster)
        return _Bucket(name, redis_key, rate, interval, max(interval, burst * interval))

    async def _ask(self, buckets: list[_Bucket], now: float) -> None:
        try:
            replies = await self._take(buckets)
        except TRANSIENT as exc:
            raise_if_cancelling()
            self._warn(exc)
            return
        refusal: RequestsLimited | None = None
        for bucket, (granted, wait_us) in zip(buckets, replies, strict=True):
            wait_s = max(0.0, float(wait_us)) / 1_000_000
            if not self._grants.granted(bucket.key, int(granted), wait_s, now):
                refusal = refusal or self._refusal(bucket, wait_s)
        if refusal is not None:
            raise refusal

    async def _take(self, buckets: list[_Bucket]) -> list[tuple[int, int]]:
        try:
            return await self._take_once(buckets)
        except NoScriptError:  # a cluster pipeline loads no script: a new or flushed node
            await self._redis.script_load(GCRA_LUA)  # on every primary
            return await self._take_once(buckets)

    async def _take_once(self, buckets: list[_Bucket]) -> list[tuple[int, int]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for b in buckets:
                args = [b.interval_us, b.tolerance_us, grant_size(b.rate)]
                await self._script(keys=[b.key], args=args, client=pipe)
            return list(await pipe.execute())

    def _refusal(self, bucket: _Bucket, wait_s: float) -> RequestsLimited:
        return RequestsLimited(bucket.name, bucket.rate, wait_s)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("API limits not enforced: Redis unreachable (%r)", exc)
