"""A device's outbox: bounded, and closing it wakes whoever waits, even a blocked writer."""

from __future__ import annotations

import asyncio

from warbler.bus.base import BusEvent
from warbler.delivery.session import DeviceSession


def _event(i: int) -> BusEvent:
    return BusEvent(type="message.new", tenant_id="t", data={"n": i}, id=i, conversation_id="c")


async def test_an_overflowing_device_is_closed_as_a_slow_consumer_and_signals_it():
    session = DeviceSession(tenant_id="t", user_id="u", queue_size=10)
    session.go_live(0)
    for i in range(1, 11):
        session.offer(_event(i), b"x")
    assert session.close_reason is None
    session.offer(_event(11), b"x")
    assert session.close_reason == "slow_consumer"
    await asyncio.wait_for(session.closed.wait(), 1)
    assert await session.next_frame() is None  # queued frames are dropped; it will resume


async def test_events_buffered_during_replay_skip_what_the_replay_already_sent():
    session = DeviceSession(tenant_id="t", user_id="u", queue_size=10)
    for i in (3, 4, 5):
        session.offer(_event(i), b"")
    session.go_live(replayed_up_to=4)
    frame = await asyncio.wait_for(session.next_frame(), 1)
    assert frame is not None and b'"id":5' in frame
