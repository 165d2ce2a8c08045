"""Hands each tenant's stored events to this node's hub in sequence order, each once.

The bus is fast but promises nothing: between nodes, events can arrive out of order (two
nodes publish at once) or not at all (Redis restarts). Sequence numbers are gap-free per
tenant, so a hole is visible the moment a later number arrives; the sequencer then reads the
missing events from the database (committed, since a later one is) and delivers everything
in order. After a bus reconnect, and on a slow poll, it also compares with the database in
case the newest events were lost. Ephemeral events (no sequence number) pass straight through.

Only tenants with a device connected to this node are tracked.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from warbler.aio import cancel_and_wait
from warbler.bus.base import BusEvent
from warbler.delivery.hub import Hub
from warbler.im.events import latest_seq, tenant_events_between
from warbler.store.db import Database
from warbler.store.models import Tenant

log = logging.getLogger(__name__)


class _Tenant:
    __slots__ = ("devices", "filling", "held", "next")

    def __init__(self) -> None:
        self.devices = 0
        self.next: int | None = None  # None until the starting point is read
        self.held: dict[int, BusEvent] = {}
        self.filling = False


class Sequencer:
    def __init__(self, db: Database, hub: Hub, poll_seconds: float | None = None) -> None:
        self.db = db
        self.hub = hub
        self.poll_seconds = poll_seconds
        self._tenants: dict[str, _Tenant] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self.gaps_filled = 0  # read by tests and metrics

    # -- tracking --------------------------------------------------------------------------

    async def track(self, tenant_id: str) -> None:
        """A device of this tenant connected to this node: deliver the tenant's events."""
        state = self._tenants.get(tenant_id)
        if state is None:
            state = self._tenants[tenant_id] = _Tenant()
        state.devices += 1
        if state.devices == 1:
            async with self.db.read() as s:
                start = await latest_seq(s, tenant_id) + 1
            if state.next is None:
                state.next = start
                self._release(tenant_id, state)

    def untrack(self, tenant_id: str) -> None:
        state = self._tenants.get(tenant_id)
        if state is not None:
            state.devices -= 1
            if state.devices <= 0:
                del self._tenants[tenant_id]

    # -- events ----------------------------------------------------------------------------

    def on_event(self, event: BusEvent) -> None:
        """The bus handler. Never blocks: gaps are filled by a task."""
        if event.id is None:
            self.hub.on_event(event)
            return
        state = self._tenants.get(event.tenant_id)
        if state is None:
            return  # nobody of this tenant is connected here
        if state.next is None or state.filling or event.id > state.next:
            if state.next is None or event.id >= state.next:
                state.held[event.id] = event
            if state.next is not None and not state.filling:
                self._fill(event.tenant_id, state, event.id - 1)
            return
        if event.id == state.next:
            self.hub.on_event(event)
            state.next += 1
            self._release(event.tenant_id, state)
        # event.id < state.next: a duplicate, already delivered

    def _release(self, tenant_id: str, state: _Tenant) -> None:
        """Deliver held events that are now next in line; fill any hole before the rest."""
        if state.next is None:
            return
        for seq in [s for s in state.held if s < state.next]:
            del state.held[seq]
        while state.next in state.held:
            self.hub.on_event(state.held.pop(state.next))
            state.next += 1
        if state.held and not state.filling:
            self._fill(tenant_id, state, min(state.held) - 1)

    def _fill(self, tenant_id: str, state: _Tenant, upto: int) -> None:
        state.filling = True
        task = asyncio.create_task(self._read_gap(tenant_id, state, upto))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_gap(self, tenant_id: str, state: _Tenant, upto: int) -> None:
        try:
            assert state.next is not None
            async with self.db.read() as s:
                missing = await tenant_events_between(s, tenant_id, state.next - 1, upto)
            for event in missing:
                if event.id is not None and event.id >= state.next:
                    self.hub.on_event(event)
                    state.next = event.id + 1
            # Numbers the database no longer has (pruned, or an erased message) are skipped.
            state.next = max(state.next, upto + 1)
            self.gaps_filled += 1
        except Exception:
            log.exception("could not read events %s..%s of tenant %s", state.next, upto, tenant_id)
            await asyncio.sleep(0.5)
        finally:
            state.filling = False
        if self._tenants.get(tenant_id) is state:
            self._release(tenant_id, state)

    # -- catching up with the database -----------------------------------------------------

    async def catch_up(self) -> None:
        """Deliver whatever the database has beyond what this node delivered (after a bus
        reconnect, where the newest events may have been lost with no later one to show it)."""
        tracked = {t: st for t, st in self._tenants.items() if st.next is not None}
        if not tracked:
            return
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Tenant.id, Tenant.event_seq).where(Tenant.id.in_(list(tracked)))
                )
            ).all()
        for tenant_id, latest in rows:
            state = tracked[tenant_id]
            if state.next is not None and latest >= state.next and not state.filling:
                self._fill(tenant_id, state, latest)

    def on_bus_reconnect(self) -> None:
        task = asyncio.create_task(self.catch_up())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        if self.poll_seconds:
            self._poller = asyncio.create_task(self._poll(self.poll_seconds))

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks, self._poller)

    async def _poll(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.catch_up()
            except Exception:
                log.exception("sequencer poll failed")
