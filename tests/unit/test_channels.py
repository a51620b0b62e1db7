"""The dispatcher's channels serve OTP first without starving bulk."""

from __future__ import annotations

import asyncio

from gateway.adapters.redis_queue import Entry
from gateway.core.message import Outbound, Priority
from gateway.services.dispatch import (
    FULL_LANE_BLOCK_MS,
    Channels,
    Job,
    block_for,
    otp_senders,
    urgent_first,
)


def job(n: int, priority: Priority) -> Job:
    return Job(Outbound(n, 1, "+79211234567", "S", "t", priority, 1, 1, None), ())


async def test_otp_overtakes_a_bulk_backlog_and_bulk_still_moves() -> None:
    channels = Channels(capacity=1000, weights=(16, 4, 1))
    for n in range(100):
        channels.put(job(n, Priority.BULK))
    for n in range(100, 120):
        channels.put(job(n, Priority.OTP))
    order = [(await channels.get()).message.priority for _ in range(21)]
    assert order[0] is Priority.OTP
    assert order.count(Priority.OTP) == 20 and order.count(Priority.BULK) == 1
    assert channels.room()[Priority.BULK] == 1000 - 99


def test_a_full_lane_keeps_reads_from_blocking_long() -> None:
    """Bulk alone under load: its lane full, the others empty. An empty read of the others
    must not block a second, or bulk runs at one read batch per second."""
    busy = {Priority.OTP: 500, Priority.TRANSACTIONAL: 500, Priority.BULK: 0}
    assert block_for(busy) == FULL_LANE_BLOCK_MS
    idle = {Priority.OTP: 500, Priority.TRANSACTIONAL: 500, Priority.BULK: 500}
    assert block_for(idle) == 1000


def test_otp_entries_are_claimed_in_a_group_of_their_own_first() -> None:
    def entry(n: int, priority: Priority) -> Entry:
        return Entry(priority, f"{n}-0".encode(), n)

    mixed = [entry(1, Priority.BULK), entry(2, Priority.OTP), entry(3, Priority.TRANSACTIONAL)]
    groups = urgent_first(mixed)
    assert [[e.message_id for e in g] for g in groups] == [[2], [1, 3]]
    bulk_only = [entry(4, Priority.BULK)]
    assert urgent_first(bulk_only) == [bulk_only]
    assert urgent_first([]) == []


async def test_an_otp_only_sender_takes_otps_and_leaves_bulk_to_the_others() -> None:
    channels = Channels(capacity=100, weights=(16, 4, 1))
    channels.put(job(1, Priority.BULK))
    channels.put(job(2, Priority.OTP))
    assert (await channels.get_otp()).message.id == 2
    waiting = asyncio.create_task(channels.get_otp())
    await asyncio.sleep(0)
    assert not waiting.done()  # the bulk job is not for it
    channels.put(job(3, Priority.OTP))
    assert (await asyncio.wait_for(waiting, 1.0)).message.id == 3
    assert (await channels.get()).message.id == 1


def test_an_eighth_of_the_senders_up_to_sixteen_take_otps_only() -> None:
    assert [otp_senders(n) for n in (8, 15, 16, 64, 500, 4000)] == [0, 0, 2, 8, 16, 16]
