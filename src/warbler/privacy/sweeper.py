"""The retention sweeper: a background worker that applies every tenant's retention policy
and deletes expired export archives, once at start and then every interval.

Every node runs one; a lease on each tenant's policy row makes sure only one node sweeps a
tenant at a time (``RetentionService.sweep``). ``warbler privacy sweep`` runs one pass.
"""

from __future__ import annotations

import asyncio
import logging

from warbler.aio import cancel_and_wait
from warbler.privacy.export import ExportService
from warbler.privacy.retention import RetentionService

log = logging.getLogger(__name__)


class RetentionSweeper:
    def __init__(
        self, retention: RetentionService, exports: ExportService, interval_seconds: float
    ) -> None:
        self.retention = retention
        self.exports = exports
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, dict[str, int]]:
        """One pass over every tenant with a policy: {tenant id: counts} (tenants another
        node was sweeping are left out), plus expired exports under ``"exports"``."""
        out: dict[str, dict[str, int]] = {}
        for tenant_id in await self.retention.due_tenants():
            try:
                counts = await self.retention.sweep(tenant_id)
            except Exception:
                log.exception("retention sweep of tenant %s failed; will retry", tenant_id)
                continue
            if counts is not None:
                out[tenant_id] = counts
        out["exports"] = {"expired": await self.exports.expire()}
        return out

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("the retention sweep failed; will retry")
            await asyncio.sleep(self.interval)
