"""The errors of a server that is down, restarting or failing over: retry, don't crash."""

from __future__ import annotations

import psycopg2
from redis.exceptions import RedisError

# redis-py's and psycopg2's errors are not OSError/ConnectionError subclasses.
TRANSIENT: tuple[type[BaseException], ...] = (
    RedisError,
    psycopg2.Error,
    ConnectionError,
    OSError,
    TimeoutError,
)
