"""The fault suite: each fault injected for real during a load, then every message accounted.

``make test`` runs the short versions (a few thousand messages, the faults that matter
most); ``make test-faults`` runs every fault under a load of 100,000 messages. What each
row means is in ``tests/faults/rig.py``; the table is printed at the end of the session.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.faults import scenarios
from tests.faults.conftest import ROWS, save
from tests.faults.rig import OpenLoad, Row, Servers, account, run
from tests.faults.scenarios import SHORT, Scenario, Size, full_size

ALL: list[Any] = [
    ("sigkill", scenarios.sigkill),
    ("redis_restart", scenarios.redis_restart),
    ("redis_flushall", scenarios.redis_flushall),
    ("redis_unreachable", scenarios.redis_unreachable),
    ("postgres_restart", scenarios.postgres_restart),
    ("smsc_drops", scenarios.smsc_drops),
    ("smsc_hang", scenarios.smsc_hang),
    ("throttled", scenarios.throttled),
    ("receipts_disordered", scenarios.receipts_disordered),
    ("receipts_never", scenarios.receipts_never),  # ended by the receipt deadline (30 s here)
]
SHORT_SET = ("sigkill", "redis_flushall", "smsc_drops")


async def play(servers: Servers, name: str, scenario: Scenario, size: Size) -> Row:
    work = Path(tempfile.mkdtemp(prefix=f"sgf-{name}-", dir="/tmp"))
    async with run(servers, work) as current:
        load = OpenLoad(
            f"http://127.0.0.1:{current.http_port}", current.api_key, size.total, size.rate
        )
        sending = asyncio.create_task(load.run())
        await scenario(current, load, size)
        await sending
        row = await account(name, current, load, current.fault.events, within=300)
    ROWS.append(row)
    save(ROWS)
    return row


def check(row: Row) -> None:
    assert row.missing == 0, row  # invariant 1: a 2xx is in PostgreSQL
    assert row.lost == 0, row
    assert row.duplicated <= row.duplicate_bound, row  # invariant 3
    assert row.inconsistent == 0, row
    assert row.notes["parts_recorded_twice"] == 0, row
    assert "HTTP 500" not in row.notes["refused_by_api"], row  # a server down is a 503
    assert "TimeoutError" not in row.notes["refused_by_api"], row  # no request hangs 30 s
    if row.fault == "sigkill":
        assert row.notes["kills"] >= 1, row


def check_fault_specific(row: Row) -> None:
    notes = row.notes
    if row.fault == "smsc_hang":
        assert notes["detect_s"] is not None, row
        assert notes["detect_s"] <= notes["detect_limit_s"] + 2.0, row
        assert notes["rebind_s"] is not None, row
        assert notes["b_accepted_during"] > 0, row  # the traffic moved to the other route
    if row.fault == "throttled":
        assert notes["submits_per_accepted_during"] <= 2.0, row  # no resubmit storm
        # No busy loop: the processes' CPU does not climb while they send less. (CPU per
        # accepted submit is no measure: the open-loop intake goes on at the same rate.)
        assert notes["cpu_pct_during"] <= 1.25 * notes["cpu_pct_before"] + 10, row


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("name", "scenario"), [p for p in ALL if isinstance(p, tuple) and p[0] in SHORT_SET]
)
async def test_fault_short(fault_servers: Servers, name: str, scenario: Scenario) -> None:
    row = await play(fault_servers, name, scenario, SHORT)
    check(row)


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("name", "scenario"), ALL)
async def test_fault_full(fault_servers: Servers, name: str, scenario: Scenario) -> None:
    row = await play(fault_servers, name, scenario, full_size())
    check(row)
    check_fault_specific(row)
