"""Keeps the resume log bounded: events older than the retention period are pruned.

A client whose cursor points before the oldest kept event is told ``resync_required``
(see ``events.cursor_is_resumable``); messages themselves are not touched.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, select

from warbler.aio import cancel_and_wait
from warbler.clock import utcnow
from warbler.store.db import Database
from warbler.store.models import Event

log = logging.getLogger(__name__)

BATCH = 5_000


class EventPruner:
    """A background worker: prunes once at start, then every ``interval_seconds``."""

    def __init__(self, db: Database, retention_days: int, interval_seconds: float = 3600) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days)
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def prune(self) -> int:
        """Delete expired events in batches (short write transactions); returns how many."""
        cutoff = utcnow() - self.retention
        total = 0
        while True:
            async with self.db.write() as s:
                ids = (
                    await s.scalars(
                        select(Event.id)
                        .where(Event.created_at < cutoff)
                        .order_by(Event.id)
                        .limit(BATCH)
                    )
                ).all()
                if ids:
                    await s.execute(delete(Event).where(Event.id.in_(ids)))
            total += len(ids)
            if len(ids) < BATCH:
                return total

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="event-pruner")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while True:
            try:
                pruned = await self.prune()
                if pruned:
                    log.info("pruned %d events older than %s", pruned, self.retention)
            except Exception:
                log.exception("event pruning failed; will retry")
            await asyncio.sleep(self.interval)
