"""One function per fault: each injects it for real during the load, and notes what it saw.

A scenario gets the run, the load (running) and the size; it returns once the fault is over,
having set ``run.fault`` (start, end, how many strikes for the duplicate bound, notes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psutil
import redis

from tests.faults.rig import (
    ENQUIRE_LINK_S,
    PROCS,
    RESPONSE_TIMEOUT_S,
    OpenLoad,
    Run,
    cpu_seconds,
    gateway_processes,
)


@dataclass(frozen=True)
class Size:
    total: int  # messages accepted before the load stops
    rate: float  # offered, messages/s
    fault_s: float  # how long a lasting fault lasts
    kill_every: tuple[float, float]  # SIGKILL interval bounds, seconds
    max_kills: int  # a short run stops killing after this many


SHORT = Size(total=2000, rate=600, fault_s=3.0, kill_every=(3.0, 5.0), max_kills=2)
FULL = Size(total=100_000, rate=1500, fault_s=30.0, kill_every=(5.0, 20.0), max_kills=1000)


def full_size() -> Size:
    """FULL, or fewer messages / another rate on a crowded machine (the table says which)."""
    total = int(os.environ.get("SMSGW_FAULT_MESSAGES", FULL.total))
    rate = float(os.environ.get("SMSGW_FAULT_RATE", FULL.rate))
    seconds = float(os.environ.get("SMSGW_FAULT_SECONDS", FULL.fault_s))
    return dataclasses.replace(FULL, total=total, rate=rate, fault_s=seconds)


Scenario = Callable[[Run, OpenLoad, Size], Awaitable[None]]


async def reached(load: OpenLoad, share: float) -> None:
    """Until ``share`` of the load is accepted: faults strike a gateway in full flow."""
    await load.reached(round(share * load.total))


def _begin(run: Run) -> None:
    run.fault.started = time.time()


def _end(run: Run, events: int) -> None:
    run.fault.ended, run.fault.events = time.time(), events


async def sigkill(run: Run, load: OpenLoad, size: Size) -> None:
    """SIGKILL a random gateway process at once, then every few seconds while the load lasts."""
    await reached(load, 0.1)
    _begin(run)
    kills = 0
    while kills < size.max_kills and (kills == 0 or len(load.accepted) < load.total):
        victims = gateway_processes(run.gateway)
        if victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                random.choice(victims).send_signal(signal.SIGKILL)
                kills += 1
        await asyncio.sleep(random.uniform(*size.kill_every))
    _end(run, kills)
    run.fault.notes["kills"] = kills


async def redis_restart(run: Run, load: OpenLoad, size: Size) -> None:
    await reached(load, 0.3)
    _begin(run)
    await asyncio.to_thread(run.servers.redis.stop)
    await asyncio.to_thread(run.servers.redis.start)
    _end(run, PROCS)  # every process's in-flight work may go round again


async def redis_flushall(run: Run, load: OpenLoad, size: Size) -> None:
    await reached(load, 0.3)
    _begin(run)
    with redis.Redis.from_url(run.servers.redis_url) as client:
        client.flushall()
    _end(run, PROCS)


async def redis_unreachable(run: Run, load: OpenLoad, size: Size) -> None:
    """A partition: live connections cut, new ones swallowed, for ``fault_s``."""
    await reached(load, 0.2)
    _begin(run)
    proxy = run.servers.redis_proxy
    await asyncio.to_thread(proxy.command, "blackhole")
    await asyncio.to_thread(proxy.command, "cut")
    await asyncio.sleep(size.fault_s)
    await asyncio.to_thread(proxy.command, "pass")
    _end(run, PROCS)


async def postgres_restart(run: Run, load: OpenLoad, size: Size) -> None:
    await reached(load, 0.3)
    _begin(run)
    await asyncio.to_thread(run.servers.postgres.stop)
    await asyncio.to_thread(run.servers.postgres.start)
    _end(run, PROCS)


async def smsc_drops(run: Run, load: OpenLoad, size: Size) -> None:
    """Both SMSCs drop every connection every 2 s for ``fault_s``."""
    await reached(load, 0.2)
    _begin(run)
    drops, deadline = 0, time.monotonic() + size.fault_s
    while time.monotonic() < deadline:
        for sim in run.sims.values():
            sim.drop_connections()
        drops += 1
        await asyncio.sleep(2.0)  # the fault's cadence, not a wait for a condition
    _end(run, drops * PROCS)
    run.fault.notes["drops"] = drops


async def smsc_hang(run: Run, load: OpenLoad, size: Size) -> None:
    """SMSC "a" (the cheaper route) stops answering anything, binds left open."""
    await reached(load, 0.2)
    a, b = run.sims["a"], run.sims["b"]
    hung = a.sessions()
    binds_before, b_before = a.stats.binds, b.stats.resp_ok
    _begin(run)
    a.set_hang(True)
    detected = await _all_closed(run, hung, within=size.fault_s + 30)
    await asyncio.sleep(max(0.0, run.fault.started + size.fault_s - time.time()))
    b_during = b.stats.resp_ok - b_before
    a.set_hang(False)
    rebound = await _rebound(run, binds_before, within=30)
    _end(run, PROCS)
    run.fault.notes.update(
        detect_s=detected,
        rebind_s=rebound,
        b_accepted_during=b_during,
        detect_limit_s=ENQUIRE_LINK_S + RESPONSE_TIMEOUT_S,
    )


async def _all_closed(run: Run, sessions: list[int], within: float) -> float | None:
    """Seconds until the gateway closed every one of ``sessions`` of the hung SMSC."""
    stats = run.sims["a"].stats.sessions
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(stats[n].open for n in sessions):
            return round(time.time() - run.fault.started, 1)
        await asyncio.sleep(0.1)
    return None


async def _rebound(run: Run, binds_before: int, within: float) -> float | None:
    """Seconds from the hang's end until the gateway bound "a" again."""
    sim, since = run.sims["a"], time.time()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if sim.stats.binds > binds_before and sim.sessions():
            return round(time.time() - since, 1)
        await asyncio.sleep(0.1)
    return None


async def throttled(run: Run, load: OpenLoad, size: Size) -> None:
    """20 % ESME_RTHROTTLED and 5 % ESME_RMSGQFUL on both SMSCs for 2 × ``fault_s``."""
    await reached(load, 0.1)
    cpu0, _, ok0, t0 = _gauges(run)
    await asyncio.sleep(2.0)  # a baseline under the same load, fault-free
    cpu1, sub1, ok1, t1 = _gauges(run)
    _begin(run)
    for sim in run.sims.values():
        sim.update(throttle_ratio=0.2, msgqful_ratio=0.05)
    await asyncio.sleep(2 * size.fault_s)  # how long the fault lasts: its definition
    cpu2, sub2, ok2, t2 = _gauges(run)
    for sim in run.sims.values():
        sim.update(throttle_ratio=0.0, msgqful_ratio=0.0)
    _end(run, 0)
    run.fault.notes.update(
        cpu_pct_before=_pct(cpu1 - cpu0, t1 - t0),
        cpu_pct_during=_pct(cpu2 - cpu1, t2 - t1),
        cpu_ms_per_accepted_before=_per(cpu1 - cpu0, ok1 - ok0),
        cpu_ms_per_accepted_during=_per(cpu2 - cpu1, ok2 - ok1),
        submits_per_accepted_during=round((sub2 - sub1) / max(1, ok2 - ok1), 2),
        accepted_per_s_during=round((ok2 - ok1) / (t2 - t1)),
    )


def _gauges(run: Run) -> tuple[float, int, int, float]:
    submits = sum(sim.stats.submits for sim in run.sims.values())
    return cpu_seconds(run.gateway), submits, run.accepted_submits(), time.monotonic()


def _pct(cpu: float, wall: float) -> float:
    return round(100 * cpu / wall)


def _per(cpu: float, accepted: int) -> float:
    return round(1000 * cpu / max(1, accepted), 3)


async def receipts_disordered(run: Run, load: OpenLoad, size: Size) -> None:
    """Receipts before their submit response (30 %) and twice (30 %), the whole load long."""
    _begin(run)
    for sim in run.sims.values():
        sim.update(early_receipt_ratio=0.3, duplicate_receipt_ratio=0.3)
    await reached(load, 1.0)
    _end(run, 0)


async def receipts_never(run: Run, load: OpenLoad, size: Size) -> None:
    """2 % of receipts never sent: those messages must still end (expired), not hang."""
    _begin(run)
    for sim in run.sims.values():
        sim.update(lost_receipt_ratio=0.02)
    await reached(load, 1.0)
    _end(run, 0)
    run.fault.notes["receipts_lost"] = sum(s.stats.receipts_lost for s in run.sims.values())
