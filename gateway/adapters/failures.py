"""The errors of a server that is down, restarting or failing over: retry, don't crash."""

from __future__ import annotations

import asyncio

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


def raise_if_cancelling() -> None:
    """Call first in a handler that swallows errors: aiopg answers a cancelled query with a
    psycopg2 error (the query was cancelled on the server), not CancelledError, so a loop
    that retries such errors would eat the cancellation and never stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
