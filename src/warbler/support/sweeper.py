"""The support sweeper: every ``WARBLER_SUPPORT_SWEEP_SECONDS``, assign what can be assigned.

Assignment happens at once when capacity frees (resolve, transfer, an agent going online, a
raised capacity); the sweep catches what no event announces, chiefly a team's office hours
opening while tickets wait. Every node runs one; the per-tenant queue lock keeps them from
assigning the same ticket twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from warbler.aio import cancel_and_wait
from warbler.store.models_support import SupportTicket

if TYPE_CHECKING:
    from warbler.support.service import SupportService

log = logging.getLogger(__name__)


class SupportSweeper:
    def __init__(self, support: SupportService, interval_seconds: float) -> None:
        self.support = support
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One pass over every tenant with waiting tickets; returns how many were assigned."""
        async with self.support.db.read() as s:
            tenants = (
                await s.scalars(
                    select(SupportTicket.tenant_id)
                    .where(SupportTicket.state == "waiting")
                    .distinct()
                )
            ).all()
        assigned = 0
        for tenant_id in tenants:
            try:
                assigned += await self.support.dispatch(tenant_id)
            except Exception:
                log.exception("assigning waiting tickets of tenant %s failed", tenant_id)
        return assigned

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="support-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                assigned = await self.sweep()
                if assigned:
                    log.info("the support sweep assigned %d waiting tickets", assigned)
            except Exception:
                log.exception("the support sweep failed; will retry")
