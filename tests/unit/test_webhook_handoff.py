"""The handoff's bookkeeping, with its posting, recording and releasing replaced by
recorders (the real ones are tested against PostgreSQL and over TCP in
tests/integration/test_webhook_hold.py and tests/e2e/test_webhook_handoff.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import pytest

from gateway.adapters.message_store import StatusEvent
from gateway.adapters.webhook_store import Delivery
from gateway.core.lifecycle import State
from gateway.services import webhook_handoff
from gateway.services.webhook_handoff import Handoff, Post


class Outbox:
    """What the handoff wrote: results by id, and the ids it released."""

    def __init__(self) -> None:
        self.results: dict[int, str | None] = {}
        self.released: list[int] = []

    async def record(self, batch: Sequence[Delivery], results: Sequence[str | None]) -> None:
        self.results.update({d.id: r for d, r in zip(batch, results, strict=True)})

    async def release(self, ids: Sequence[int]) -> None:
        self.released += ids


def handoff(outbox: Outbox, lease_s: float = 60.0, timeout_s: float = 10.0) -> Handoff:
    return Handoff(lease_s, timeout_s, 1, 100, outbox.record, outbox.release)


def event(outbox_id: int) -> StatusEvent:
    hook = Delivery(outbox_id, outbox_id, "http://127.0.0.1/hook", "{}", 0, "whsec_x")
    return StatusEvent(outbox_id, 1, State.DELIVERED, datetime.now(UTC), "sim", None, hook=hook)


@contextlib.asynccontextmanager
async def running(sender: Handoff, post: Post) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sender.run(post))
    await until(lambda: sender.running)  # hold_s is the lease from now on
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(probe: Callable[[], bool], within: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if probe():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)


async def test_handed_callbacks_are_posted_and_recorded_in_one_batch() -> None:
    outbox, posted = Outbox(), list[int]()

    async def post(d: Delivery) -> str | None:
        posted.append(d.id)
        return None if d.id != 2 else "HTTP 500"

    sender = handoff(outbox)
    async with running(sender, post):
        hold = sender.hold_s()
        assert hold == 60.0
        sender.hand([event(1), event(2)], hold)
        await until(lambda: len(outbox.results) == 2)
    assert posted == [1, 2] and outbox.results == {1: None, 2: "HTTP 500"}
    assert outbox.released == []


async def test_rows_written_without_a_hold_are_not_handed() -> None:
    outbox, posted = Outbox(), list[int]()

    async def post(d: Delivery) -> str | None:
        posted.append(d.id)
        return None

    sender = handoff(outbox)
    assert sender.hold_s() == 0.0  # not running: due at once, for the poller
    async with running(sender, post):
        sender.hand([event(1)], 0.0)
        assert sender.pending == 0  # not taken: nothing to send, now or later
    assert posted == [] and outbox.results == {} and outbox.released == []


async def test_a_callback_that_waited_too_long_for_a_sender_is_left_to_the_poller() -> None:
    outbox, posted = Outbox(), list[int]()

    async def slow(d: Delivery) -> str | None:
        posted.append(d.id)
        await asyncio.sleep(0.15)
        return None

    sender = handoff(outbox, lease_s=0.3, timeout_s=0.1)  # waits at most 0.1 s
    async with running(sender, slow):
        sender.hand([event(1), event(2)], sender.hold_s())
        await until(lambda: sender.pending == 0)  # 1 recorded, 2 dropped
    assert posted == [1] and 2 not in outbox.results and 2 not in outbox.released


async def test_a_post_that_raises_is_recorded_as_failed() -> None:
    outbox = Outbox()

    async def broken(d: Delivery) -> str | None:
        raise RuntimeError("a bug")

    sender = handoff(outbox)
    async with running(sender, broken):
        sender.hand([event(1)], sender.hold_s())
        await until(lambda: 1 in outbox.results)
    assert outbox.results == {1: "RuntimeError"}


async def test_a_stop_waits_for_posts_in_flight_then_releases_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outbox, answer, started = Outbox(), asyncio.Event(), list[int]()
    monkeypatch.setattr(webhook_handoff, "STOP_WAIT_S", 0.2)

    async def post(d: Delivery) -> str | None:
        started.append(d.id)
        if d.id == 1:
            await asyncio.sleep(0.05)  # answered within the stop's wait: recorded
            return None
        await answer.wait()  # never answered: released
        return None

    sender = Handoff(60.0, 10.0, 2, 100, outbox.record, outbox.release)
    async with running(sender, post):
        sender.hand([event(1), event(2), event(3)], sender.hold_s())
        await until(lambda: started == [1, 2])  # in flight; 3 waits for a sender
    assert outbox.results == {1: None} and sorted(outbox.released) == [2, 3]


async def test_rows_handed_after_the_stop_are_released() -> None:
    outbox = Outbox()

    async def post(d: Delivery) -> str | None:
        return None

    sender = handoff(outbox)
    async with running(sender, post):
        hold = sender.hold_s()  # a flush began while it ran and committed after
    sender.hand([event(7)], hold)
    await until(lambda: outbox.released == [7])


async def test_results_being_written_at_a_stop_are_written_again_not_released() -> None:
    outbox, gate, calls = Outbox(), asyncio.Event(), [0]

    async def stuck_once(batch: Sequence[Delivery], results: Sequence[str | None]) -> None:
        calls[0] += 1
        if calls[0] == 1:
            await gate.wait()  # the stop comes in the middle of this write
        await outbox.record(batch, results)

    async def post(d: Delivery) -> str | None:
        return None

    sender = Handoff(60.0, 10.0, 1, 100, stuck_once, outbox.release)
    async with running(sender, post):
        sender.hand([event(1)], sender.hold_s())
        await until(lambda: calls[0] == 1)
    assert outbox.results == {1: None} and outbox.released == []
