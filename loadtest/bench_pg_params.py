"""A/B: array parameters as Python lists (psycopg2 adapts each element) or as one
literal string (gateway/adapters/pg_arrays.py), on the hot batched statements.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/DB python -m loadtest.bench_pg_params [rounds]

Each round runs 1000-row batches through the whole hot path of a billed client: accept
(``insert_rows`` + holds), ``claim``, ``record_submitted`` (with the settlement through
``billing_store.post``), and a delivery receipt per message (``apply_receipts``), once
with the encoders swapped for ``list`` (the old way) and once as shipped, interleaved.
Prints client CPU (``time.process_time``) and the PostgreSQL backend's CPU, µs per row.
Truncates the message tables and ``clients`` of that database: use a scratch one.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiopg

from gateway.adapters import billing_store, inbound_store, message_store, pg, receipt_store
from gateway.core import billing
from gateway.core.ids import IdGenerator
from gateway.core.lifecycle import State
from gateway.core.message import NewMessage, Priority
from loadtest.bench_store import cpu_seconds

BATCH = 1000
CLIENT = 1
ENCODERS = (
    "int_array",
    "text_array",
    "numeric_array",
    "timestamptz_array",
    "float_array",
    "bool_array",
)
MODULES = (message_store, receipt_store, billing_store, inbound_store)
Phase = Callable[[Any], Awaitable[None]]


@contextmanager
def encoders(mode: str) -> Iterator[None]:
    """``lists``: hand psycopg2 the Python lists again, as before pg_arrays."""
    saved = {(m, n): getattr(m, n) for m in MODULES for n in ENCODERS if hasattr(m, n)}
    if mode == "lists":
        for module, name in saved:
            setattr(module, name, list)
    try:
        yield
    finally:
        for (module, name), func in saved.items():
            setattr(module, name, func)


def _rows(ids: IdGenerator, start: int) -> list[message_store.Row]:
    expires = datetime.now(UTC) + timedelta(days=1)
    return [
        (
            ids.next(),
            NewMessage(
                CLIENT,
                f"+7921{(start + n) % 10_000_000:07d}",
                "Shop",
                f"Ваш код {start + n}: никому его не говорите",
                Priority.TRANSACTIONAL,
                "ucs2",
                1,
                client_ref=f"b{start + n}" if n % 2 else None,
                expires_at=expires + timedelta(microseconds=n),
            ),
            Decimal("0.500000"),
        )
        for n in range(BATCH)
    ]


def _phases(rows: list[message_store.Row]) -> list[tuple[str, Phase]]:
    ids = [mid for mid, _, _ in rows]
    pids = {mid: f"{mid:x}" for mid in ids}
    holds = [billing.hold(CLIENT, mid, hold) for mid, _, hold in rows if hold is not None]

    async def accept(cur: Any) -> None:
        await billing_store.lock_accounts(cur, [CLIENT])
        await message_store.insert_rows(cur, rows, 10.0)
        await billing_store.post(cur, holds, locked=True)

    async def submitted(cur: Any) -> None:
        batch = [
            message_store.Submitted(mid, "sim", Decimal("0.35"), (pids[mid],), (pids[mid],))
            for mid in ids
        ]
        await message_store.record_submitted(cur, batch, [])

    async def receipts(cur: Any) -> None:
        done = datetime.now(UTC).replace(microsecond=0)
        batch = [
            receipt_store.ReceiptIn("sim", p, (p,), State.DELIVERED, None, done)
            for p in pids.values()
        ]
        await receipt_store.apply_receipts(cur, batch)

    return [("accept", accept), ("submitted", submitted), ("receipts", receipts)]


async def _round(
    pool: aiopg.Pool, rows: list[message_store.Row], backend: int, totals: dict[str, float]
) -> None:
    ids = [mid for mid, _, _ in rows]
    for name, phase in _phases(rows):
        client, server = time.process_time(), cpu_seconds(backend)
        async with pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            await phase(cur)
        totals[f"{name} client"] += time.process_time() - client
        totals[f"{name} server"] += cpu_seconds(backend) - server
        if name == "accept":
            client = time.process_time()
            await message_store.claim(pool, ids, 60.0)
            totals["claim client"] += time.process_time() - client


SETUP_SQL = f"""
TRUNCATE messages, message_parts, early_receipts, client_refs, ledger, webhook_outbox,
         clients CASCADE;
INSERT INTO clients (id, name, webhook_secret, balance) VALUES ({CLIENT}, 'bench', 'x', 1e9)
"""


async def bench(dsn: str, rounds: int) -> dict[str, dict[str, float]]:
    """µs per row, by mode and measure."""
    async with pg.open_pool(dsn, 1) as pool:
        await pg.migrate(pool)
        await pg.execute(pool, SETUP_SQL)
        backend = (await pg.fetch(pool, "SELECT pg_backend_pid()"))[0][0]
        ids = IdGenerator(node=1001)
        totals: dict[str, dict[str, float]] = {m: defaultdict(float) for m in ("lists", "literals")}
        for n in range(rounds):
            for mode in ("lists", "literals") if n % 2 else ("literals", "lists"):
                rows = _rows(ids, (2 * n + (mode == "lists")) * BATCH)
                with encoders(mode):
                    await _round(pool, rows, backend, totals[mode])
        return {m: {k: v / (rounds * BATCH) * 1e6 for k, v in t.items()} for m, t in totals.items()}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    result = asyncio.run(bench(os.environ["DATABASE_URL"], rounds))
    print(f"{rounds} rounds of {BATCH} rows, µs per row; load average {os.getloadavg()[0]:.2f}")
    for measure in result["lists"]:
        old, new = result["lists"][measure], result["literals"][measure]
        print(f"  {measure:18} lists {old:7.2f}  literals {new:7.2f}  ({new / old - 1:+.0%})")


if __name__ == "__main__":
    main()
