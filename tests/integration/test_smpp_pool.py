"""The SMPP pool against the SMSC simulator over TCP: spread, windows, throttling, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from loadtest.smsc import SmscConfig, SmscSimulator
from providers.base import (
    InboundPart,
    ProviderTemporaryError,
    Submission,
    SubmitResult,
)
from providers.smpp import SmppProvider, SmppSettings

DEADLINE = 10.0
CYRILLIC = "Ваш код подтверждения 4521. Никому не сообщайте его. " * 4  # 4 UCS-2 parts

Factory = Callable[..., Awaitable[SmppProvider]]
Outcomes = list[SubmitResult | BaseException]


async def eventually(predicate: Callable[[], bool], within: float = DEADLINE) -> None:
    """Poll ``predicate`` (simulator counters have no event to await) until it holds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def submission(n: int, text: str = "Заказ готов") -> Submission:
    return Submission(n, "+79211234567", "Shop", text, want_receipt=False)


@pytest.fixture
async def sim() -> AsyncIterator[SmscSimulator]:
    async with SmscSimulator(SmscConfig(port=0, receipt_delay=0.01)) as simulator:
        yield simulator


@pytest.fixture
async def make(sim: SmscSimulator) -> AsyncIterator[Factory]:
    started: list[SmppProvider] = []

    async def start(on_inbound: Any = None, **changes: Any) -> SmppProvider:
        defaults: dict[str, Any] = {"close_timeout": 2.0, "reconnect_min": 0.05}
        settings = SmppSettings(
            "pool", "127.0.0.1", sim.port, "smsgw", "secret", **(defaults | changes)
        )
        provider = SmppProvider(settings, lambda receipt: None, on_inbound)
        await provider.start()
        started.append(provider)
        return provider

    yield start
    for provider in started:
        await provider.close()


async def submit_all(provider: SmppProvider, count: int, first: int = 0) -> Outcomes:
    jobs = (provider.submit(submission(n)) for n in range(first, first + count))
    return list(await asyncio.gather(*jobs, return_exceptions=True))


def split(outcomes: Outcomes) -> tuple[list[SubmitResult], list[ProviderTemporaryError]]:
    """Successes and temporary errors; anything else fails the test."""
    done = [o for o in outcomes if isinstance(o, SubmitResult)]
    retry = [o for o in outcomes if isinstance(o, ProviderTemporaryError)]
    assert len(done) + len(retry) == len(outcomes), [o for o in outcomes if o not in done + retry]
    return done, retry


def session_counts(sim: SmscSimulator) -> list[int]:
    return [sim.stats.sessions[n].accepted for n in sim.sessions("smsgw")]


async def test_three_binds_share_the_load(make: Factory, sim: SmscSimulator) -> None:
    sim.update(resp_delay=0.005)
    provider = await make(binds=3, window=20)
    snapshot = provider.snapshot()
    assert (snapshot.binds_up, snapshot.binds_total, snapshot.window) == (3, 3, 60)
    assert provider.capacity() == 60

    done, _ = split(await submit_all(provider, 3000))

    assert len(done) == 3000
    counts = session_counts(sim)
    assert len(counts) == 3 and sum(counts) == 3000
    assert min(counts) > 3000 / 3 * 0.6, counts
    assert provider.snapshot().submitted == 3000


async def test_the_window_of_each_bind_is_never_exceeded(make: Factory, sim: SmscSimulator) -> None:
    sim.update(max_window=10, resp_delay=0.002)
    provider = await make(binds=3, window=10)

    done, _ = split(await submit_all(provider, 3000))

    assert len(done) == 3000
    assert sim.stats.window_violations == 0
    assert all(sim.stats.sessions[n].max_outstanding <= 10 for n in sim.sessions())


async def test_binds_dropped_mid_window_lose_nothing_and_come_back(
    make: Factory, sim: SmscSimulator
) -> None:
    sim.update(resp_delay=0.01)
    provider = await make(binds=3, window=100, response_timeout=30.0)
    jobs = asyncio.ensure_future(submit_all(provider, 4000))
    await eventually(lambda: sim.stats.submits > 1000)

    sim.drop_connections()
    done, retry = split(await asyncio.wait_for(jobs, DEADLINE))

    assert retry and {error.code for error in retry} <= {"smpp_link_lost", "smpp_not_bound"}
    assert len(done) <= sim.stats.resp_ok  # every success was taken by the SMSC
    assert len({result.part_ids[0] for result in done}) == len(done)
    await eventually(lambda: provider.snapshot().binds_up == 3)
    later, _ = split(await submit_all(provider, 300, first=10_000))
    assert len(later) == 300


async def test_throttling_shrinks_the_window_and_loses_nothing(
    make: Factory, sim: SmscSimulator
) -> None:
    sim.update(max_tps=1000.0, tps_burst=10)
    provider = await make(binds=2, window=50, throttle_retries=20)
    windows: list[int] = []

    async def watch() -> None:
        while True:
            windows.append(provider.snapshot().window)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    done, retry = split(await submit_all(provider, 1000))
    elapsed = time.monotonic() - started
    watcher.cancel()

    assert len(done) + len(retry) == 1000
    assert len(done) == sim.stats.resp_ok  # nothing accepted twice, nothing accepted in vain
    assert len(done) > 900, (len(done), [e.code for e in retry[:3]])
    assert provider.snapshot().throttled == sim.stats.throttled > 0
    assert min(windows) < 100  # cut below the 2 × 50 it started with
    assert len(done) / elapsed < 1000 * 1.3  # the contract held, give or take the burst


async def test_a_hung_bind_does_not_stall_the_others(make: Factory, sim: SmscSimulator) -> None:
    provider = await make(
        binds=2, window=20, response_timeout=0.5, quarantine_after=1, quarantine=0.3
    )
    hung, _ = sim.sessions()
    sim.set_hang(True, session=hung)

    started = time.monotonic()
    done, retry = split(await submit_all(provider, 400))

    assert time.monotonic() - started < 3.0
    # Only what the hung bind had written fails (its window, and the part being written
    # when the link was cut); what waited in its queue went over the other bind.
    assert len(done) >= 400 - 21
    assert {error.code for error in retry} <= {"smpp_timeout", "smpp_send_failed"}
    await eventually(lambda: any(bind["quarantined"] for bind in provider.snapshot().binds))
    sim.set_hang(False, session=hung)
    await eventually(lambda: provider.snapshot().binds_up == 2)
    assert len(split(await submit_all(provider, 100, first=1000))[0]) == 100


async def test_mo_parts_arrive_with_sar_and_are_acknowledged_when_stored(
    make: Factory, sim: SmscSimulator
) -> None:
    loop = asyncio.get_running_loop()
    parts: list[InboundPart] = []
    stored: asyncio.Future[None] = loop.create_future()

    def on_inbound(part: InboundPart) -> asyncio.Future[None]:
        parts.append(part)
        return stored

    provider = await make(on_inbound=on_inbound, binds=2)
    count = sim.send_mo("smsgw", "+79211234567", "4521", CYRILLIC, concat="sar")
    await eventually(lambda: len(parts) == count)

    assert count == 4  # 212 characters: SAR parts carry 70 UCS-2 characters each
    assert sorted(part.sar[1:] if part.sar else () for part in parts) == [
        (4, n) for n in range(1, 5)
    ]
    assert len({part.sar[0] if part.sar else None for part in parts}) == 1
    in_order = sorted(parts, key=lambda part: part.sar[2] if part.sar else 0)  # binds race
    text = b"".join(part.short_message for part in in_order).decode("utf-16-be")
    assert text == CYRILLIC
    first = parts[0]
    assert (first.provider, first.source, first.destination) == ("pool", "79211234567", "4521")
    assert (first.data_coding, first.esm_class) == (8, 0) and first.received_at is not None
    assert sim.stats.deliver_sm_resp == 0  # deferred until the sink's future resolves
    stored.set_result(None)
    await eventually(lambda: sim.stats.deliver_sm_resp == count)
    assert provider.ready


async def test_mo_in_udh_parts_reaches_the_sink_unchanged(
    make: Factory, sim: SmscSimulator
) -> None:
    parts: list[InboundPart] = []
    await make(on_inbound=parts.append)
    count = sim.send_mo("smsgw", "+79211234567", "4521", CYRILLIC)
    await eventually(lambda: len(parts) == count)
    assert all(part.esm_class == 0x40 and part.sar is None for part in parts)
    assert parts[0].short_message[:3] == b"\x05\x00\x03"


def test_no_receipt_sink_needed_for_snapshot_offline() -> None:
    settings = SmppSettings("pool", "127.0.0.1", 1, "smsgw", "secret", binds=4, window=30)
    snapshot = SmppProvider(settings, lambda receipt: None).snapshot()
    assert (snapshot.ready, snapshot.binds_up, snapshot.binds_total) == (False, 0, 4)
    assert (snapshot.window, snapshot.window_max, len(snapshot.binds)) == (0, 120, 4)
