"""API key → client, cached for at most a second per process.

Revocation must take effect at once everywhere; a second is the bound: after
``smsgw key-revoke`` every process refuses the key within ``TTL_S``. A lookup in
flight is shared by the requests that need it (64 concurrent requests on an expired
entry make one query, not 64). Unknown keys are cached too, so a flood of one bad key
costs one query a second; a flood of many is stopped by the per-IP limit first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway.adapters.client_store import Client

TTL_S = 1.0
_MAX_ENTRIES = 10_000

Lookup = Callable[[str], Awaitable[Client | None]]


class KeyCache:
    def __init__(self, lookup: Lookup, ttl_s: float = TTL_S) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._entries: dict[str, tuple[float, asyncio.Future[Client | None]]] = {}

    async def get(self, api_key: str) -> Client | None:
        now = time.monotonic()
        entry = self._entries.get(api_key)
        if entry is None or entry[0] <= now:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            entry = (now + self._ttl, asyncio.ensure_future(self._lookup(api_key)))
            self._entries[api_key] = entry
            entry[1].add_done_callback(self._forget_failure(api_key, entry))
        return await asyncio.shield(entry[1])

    def _forget_failure(
        self, api_key: str, entry: tuple[float, asyncio.Future[Client | None]]
    ) -> Callable[[asyncio.Future[Client | None]], None]:
        def forget(future: asyncio.Future[Client | None]) -> None:
            if (future.cancelled() or future.exception()) and self._entries.get(api_key) is entry:
                del self._entries[api_key]  # a failed lookup is not cached

        return forget
