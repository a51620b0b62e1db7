"""Hot statements PREPAREd once per connection, then EXECUTEd: planned once, not per batch.

psycopg2 sends every statement as text with its parameters inlined, so PostgreSQL
parsed and planned each batch afresh: planning was 13 % of PostgreSQL's time at 2,000
one-message requests/s and as much as executing at 500/s, where batches are a message
or two (docs/benchmarks.md). ``PREPARE`` is per session and outlives a rolled-back
transaction, so each connection prepares a statement the first time it runs it. The
parameters' types come from the casts in the text (``%s::bigint[]``), as before.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg2.errors

_PLACEHOLDER = re.compile(r"%%|%s")
_prepared_on: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


class Prepared:
    """A statement with ``%s`` placeholders (``%%`` for a percent sign), as for psycopg2."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.name = "smsgw_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        count = 0

        def number(match: re.Match[str]) -> str:
            nonlocal count
            if match.group() == "%%":
                return "%"  # PREPARE goes out without parameters: nothing formats it
            count += 1
            return f"${count}"

        self._prepare = f"PREPARE {self.name} AS {_PLACEHOLDER.sub(number, sql)}"
        arguments = ", ".join(["%s"] * count)
        self._execute = f"EXECUTE {self.name} ({arguments})" if count else f"EXECUTE {self.name}"
        self.parameters = count

    async def run(self, cur: Any, params: Sequence[Any] = ()) -> None:
        """Execute on ``cur`` (an aiopg cursor), preparing on its connection first if need be."""
        if len(params) != self.parameters:
            raise TypeError(f"{self.parameters} parameters expected, {len(params)} given")
        done = _prepared_on.setdefault(cur.connection, set())
        if self.name not in done:
            await cur.execute(self._prepare)
            done.add(self.name)
        try:
            await cur.execute(self._execute, params)
        except psycopg2.errors.InvalidSqlStatementName:  # gone (DISCARD ALL?): next time anew
            done.discard(self.name)
            raise

    def __repr__(self) -> str:
        return f"Prepared({self.name})"


async def run(cur: Any, sql: str | Prepared, params: Sequence[Any] = ()) -> None:
    """``cur.execute`` for plain text or a prepared statement."""
    if isinstance(sql, Prepared):
        await sql.run(cur, params)
    else:
        await cur.execute(sql, params)
