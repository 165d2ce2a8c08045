"""Background loops stop when cancelled, whatever the timing of their wake-up."""

from __future__ import annotations

import asyncio
import logging

import pytest

from warbler.aio import cancel_and_wait, wait_event


async def _waiting_loop(event: asyncio.Event, turns: list[int]) -> None:
    """The shape of every worker loop: wait for a wake-up (or the poll), work, again."""
    while True:
        await wait_event(event, 10)
        event.clear()
        turns.append(1)


@pytest.mark.parametrize("turns_between", [0, 1, 2, 3])
async def test_a_loop_cancelled_as_its_event_is_set_stops(turns_between: int) -> None:
    # asyncio.wait_for on 3.11 returns the result when the cancel lands in the turn after the
    # awaited thing finished: the loop then runs on and stop() waits on it forever.
    event = asyncio.Event()
    turns: list[int] = []
    task = asyncio.create_task(_waiting_loop(event, turns))
    await asyncio.sleep(0)  # the loop is waiting
    event.set()
    for _ in range(turns_between):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    assert done, "the loop swallowed its cancellation"
    assert task.cancelled()


async def test_wait_event_answers_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True


async def test_cancel_and_wait_gives_up_on_a_task_that_will_not_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                continue  # a badly written handler

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="warbler.aio"):
        await asyncio.wait_for(cancel_and_wait(task, grace=0.05), timeout=2)
    assert "stubborn did not stop" in caplog.text
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=2)


async def test_cancel_and_wait_does_not_swallow_its_callers_cancellation() -> None:
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)
            raise

    inner = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(inner, grace=5))
    await asyncio.sleep(0.05)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    await asyncio.wait({inner}, timeout=2)
