"""A cancellation swallowed deep down (as Python 3.11's wait_for inside aiopg can) still
stops a service loop at its next turn."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.adapters.failures import raise_if_cancelling


async def _service_loop(turns: list[int]) -> None:
    while True:
        raise_if_cancelling()
        turns.append(1)
        with contextlib.suppress(asyncio.CancelledError):  # the lost cancellation
            await asyncio.Event().wait()  # never set: only a cancel ends the wait


async def test_a_swallowed_cancel_still_stops_the_loop() -> None:
    turns: list[int] = []
    task = asyncio.create_task(_service_loop(turns))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    assert turns == [1]
