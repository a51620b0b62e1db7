"""The one place a Redis client is made: a plain Redis, or a Redis Cluster when asked.

``redis+cluster://host:port`` (or ``rediss+cluster://``) names any node of a cluster: the
client learns the others from it and sends each command to the node owning its key's
slot. Every key we use carries a hash tag, and every multi-key command, MULTI and Lua
script stays within one tag, so the same code runs on both (``redis_queue`` shards the
queue over several tags). The cluster client is typed as ``Redis``: it offers the same
commands, and the callers need not care which they hold.
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str) -> str | None:
    """The plain URL of a ``redis+cluster://`` one; None for a plain Redis URL."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower())
    return f"{plain}{sep}{rest}" if sep and plain else None


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client for ``url``; ``options`` as ``redis.asyncio.Redis`` takes them."""
    plain = cluster_url(url)
    if plain is None:
        return aioredis.from_url(url, **options)
    return cast(aioredis.Redis, RedisCluster.from_url(plain, **options))


def is_cluster(client: aioredis.Redis) -> bool:
    return isinstance(client, RedisCluster)
