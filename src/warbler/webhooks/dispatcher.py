"""Turns the event log into webhook delivery jobs, off the hot path of sending a message.

Sending a message only writes its event; this worker notices (a bus wake-up, or its poll),
reads the events after each webhook's cursor and enqueues one delivery job per event, moving
the cursor in the same transaction. A crash between reading and enqueueing loses nothing: the
cursor did not move. The dedupe key makes a second pass over the same events harmless.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from warbler.aio import cancel_and_wait, wait_event
from warbler.bus.base import BusEvent, EventBus
from warbler.config import Settings
from warbler.jobs.queue import JobQueue
from warbler.store.db import Database
from warbler.store.models import Event, Tenant, Webhook
from warbler.webhooks.event_types import wants
from warbler.webhooks.service import DELIVERY_KIND

log = logging.getLogger(__name__)

BATCH = 500


PASS_GAP = 0.05  # seconds between two passes, at least


class WebhookDispatcher:
    def __init__(self, db: Database, queue: JobQueue, bus: EventBus, settings: Settings) -> None:
        self.db = db
        self.queue = queue
        self.bus = bus
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False

    def on_event(self, event: BusEvent) -> None:
        """Bus handler: runs on the publisher's path, so it only sets a flag."""
        if event.id is not None:
            self._wake.set()

    async def start(self) -> None:
        if not self._subscribed:
            self.bus.subscribe(self.on_event)
            self._subscribed = True
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="webhook-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.dispatch()
            except Exception:
                log.exception("turning events into webhook deliveries failed; will retry")
            # Under a stream of events, one pass per PASS_GAP covers them all: the pass's
            # query is not paid once per message sent.
            await asyncio.sleep(PASS_GAP)
            await wait_event(self._wake, self.settings.job_poll_seconds)

    async def dispatch(self) -> int:
        """One pass: enqueue deliveries for every active webhook behind its tenant's latest
        event. Returns how many deliveries were enqueued."""
        tenant_latest = (
            select(Tenant.event_seq)
            .where(Tenant.id == Webhook.tenant_id)
            .correlate(Webhook)
            .scalar_subquery()
        )
        async with self.db.read() as s:
            behind = list(
                (
                    await s.scalars(
                        select(Webhook.id).where(Webhook.active, Webhook.cursor < tenant_latest)
                    )
                ).all()
            )
        total = 0
        for webhook_id in behind:
            while True:
                enqueued, scanned = await self._advance(webhook_id)
                total += enqueued
                if scanned < BATCH:
                    break
        return total

    async def _advance(self, webhook_id: str) -> tuple[int, int]:
        """Move one webhook's cursor over up to ``BATCH`` events, in one transaction."""
        async with self.db.write_then() as (s, after):
            # Locks the row on PostgreSQL so two nodes do not scan the same range at once.
            hook = await s.scalar(select(Webhook).where(Webhook.id == webhook_id).with_for_update())
            if hook is None or not hook.active:
                return 0, 0
            rows = (
                await s.scalars(
                    select(Event)
                    .where(Event.tenant_id == hook.tenant_id, Event.seq > hook.cursor)
                    .order_by(Event.seq)
                    .limit(BATCH)
                )
            ).all()
            enqueued = 0
            for row in rows:
                if not wants(hook.event_types, row.type, row.target_user_id):
                    continue
                await self.queue.enqueue_in(
                    s,
                    DELIVERY_KIND,
                    {"webhook_id": hook.id, "event_id": row.id, "event_type": row.type},
                    tenant_id=hook.tenant_id,
                    ref=hook.id,
                    dedupe_key=f"wh:{hook.id}:{row.id}",
                    max_attempts=self.settings.webhook_max_attempts,
                    after=after if enqueued == 0 else None,
                )
                enqueued += 1
            if rows:
                hook.cursor = rows[-1].seq
            return enqueued, len(rows)
