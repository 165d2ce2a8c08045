"""A node delivers each tenant's events in sequence order, exactly once, whatever the bus does:
out-of-order and lost events are filled from the database."""

from __future__ import annotations

import asyncio

from tests.conftest import group_of, send
from warbler.bus.base import BusEvent
from warbler.delivery.sequencer import Sequencer
from warbler.im.events import latest_seq, tenant_events_between


class Recorder:
    def __init__(self) -> None:
        self.seen: list[BusEvent] = []

    def on_event(self, event: BusEvent) -> None:
        self.seen.append(event)

    @property
    def ids(self) -> list[int | None]:
        return [e.id for e in self.seen]


async def _stored_events(services, tenant_id, after, upto):
    async with services.db.read() as s:
        return await tenant_events_between(s, tenant_id, after, upto)


async def _wait_for(predicate, within=5.0):
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls a plain predicate
            await asyncio.sleep(0.01)


async def test_out_of_order_lost_and_duplicate_events_are_delivered_in_order_once(
    client, make_tenant, services
):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    recorder = Recorder()
    sequencer = Sequencer(services.db, recorder)  # type: ignore[arg-type]
    await sequencer.track(t.id)
    for i in range(6):
        await send(client, ann, conv, f"m{i}")
    async with services.db.read() as s:
        top = await latest_seq(s, t.id)
    events = await _stored_events(services, t.id, top - 6, top)
    first = events[0].id
    assert [e.id for e in events] == list(range(first, first + 6))

    # The bus delivers #3 before #1 and #2, loses #4, repeats #3, then brings #6.
    by_id = {e.id: e for e in events}
    for seq in (first + 2, first, first + 1, first + 2, first + 5):
        sequencer.on_event(by_id[seq])
    await _wait_for(lambda: len(recorder.seen) == 6)
    assert recorder.ids == list(range(first, first + 6))
    assert [e.data["message"]["text"] for e in recorder.seen] == [f"m{i}" for i in range(6)]
    assert sequencer.gaps_filled >= 1

    # Late duplicates change nothing; an ephemeral event passes straight through.
    sequencer.on_event(by_id[first + 3])
    sequencer.on_event(BusEvent(type="typing", tenant_id=t.id, data={}, conversation_id=conv))
    assert recorder.ids == [*range(first, first + 6), None]
    await sequencer.stop()


async def test_after_a_bus_outage_catch_up_delivers_what_was_lost(client, make_tenant, services):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    recorder = Recorder()
    sequencer = Sequencer(services.db, recorder)  # type: ignore[arg-type]
    await sequencer.track(t.id)
    sent = [await send(client, ann, conv, f"lost {i}") for i in range(3)]  # bus lost them all
    assert recorder.seen == []
    await sequencer.catch_up()
    await _wait_for(lambda: len(recorder.seen) == 3)
    assert [e.data["message"]["id"] for e in recorder.seen] == [m["id"] for m in sent]
    await sequencer.stop()


async def test_events_of_tenants_without_local_devices_are_ignored(client, make_tenant, services):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    recorder = Recorder()
    sequencer = Sequencer(services.db, recorder)  # type: ignore[arg-type]
    await send(client, ann, conv, "nobody here")
    async with services.db.read() as s:
        events = await tenant_events_between(s, t.id, 0, 10_000)
    sequencer.on_event(events[-1])
    assert recorder.seen == []
    await sequencer.track(t.id)
    sequencer.untrack(t.id)
    sequencer.on_event(events[-1])
    assert recorder.seen == []
