"""The job runner: a background worker that claims due jobs and runs their handlers.

It polls every ``job_poll_seconds`` and is woken early by ``notify()`` (an enqueue on this
node). At most ``concurrency`` handlers run at once; a failure is retried with exponential
backoff and jitter; leases are renewed while a handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from warbler.aio import cancel_and_wait, wait_event
from warbler.clock import utcnow
from warbler.config import Settings
from warbler.jobs.queue import JobQueue
from warbler.security.encryption import tenant_scope
from warbler.store.models import Job

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[dict[str, Any] | None]]


class JobFailure(Exception):
    """Raised by a handler to fail an attempt with a clean message and an optional result
    (an HTTP status, a latency) to record. ``retry=False`` makes the job dead at once."""

    def __init__(
        self, message: str, *, result: dict[str, Any] | None = None, retry: bool = True
    ) -> None:
        super().__init__(message)
        self.message = message
        self.result = result
        self.retry = retry


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff before attempt n+1: ``base * 2**(n-1)`` capped at ``max``, then jittered
    down by up to half, so failing jobs do not retry in lockstep."""

    base_seconds: float = 2.0
    max_seconds: float = 3600.0
    lease_seconds: float = 60.0

    def delay(self, attempts: int) -> float:
        capped = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return capped * random.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class _Kind:
    handler: Handler
    policy: RetryPolicy


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobRunner:
    """Runs registered job kinds on this node. ``start()``/``stop()`` make it a Worker."""

    def __init__(
        self,
        queue: JobQueue,
        settings: Settings,
        *,
        concurrency: int = 8,
        stop_grace_seconds: float = 5.0,
        worker_id: str | None = None,
    ) -> None:
        self.queue = queue
        self.poll_seconds = settings.job_poll_seconds
        self.concurrency = concurrency
        self.stop_grace_seconds = stop_grace_seconds
        self.worker_id = worker_id or default_worker_id()
        self._kinds: dict[str, _Kind] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        queue.add_listener(self.notify)

    def register(self, kind: str, handler: Handler, policy: RetryPolicy | None = None) -> None:
        """Run jobs of ``kind`` with ``handler``; it returns a result dict (or None) on
        success and raises to fail the attempt."""
        self._kinds[kind] = _Kind(handler, policy or RetryPolicy())
        self.notify()

    def notify(self) -> None:
        """Look for due jobs now rather than at the next poll. Never blocks."""
        self._wake.set()

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping = False
        self._loop_task = asyncio.create_task(self._loop(), name="job-runner")

    async def stop(self) -> None:
        """Stop claiming; give running handlers a moment, then abandon them: their leases
        expire and another node (or the next start) runs them again."""
        self._stopping = True
        self.notify()
        if self._loop_task is not None:
            # Let a claim in progress finish (cancelling it mid-commit could strand leases).
            done, _ = await asyncio.wait({self._loop_task}, timeout=self.stop_grace_seconds)
            if not done:
                await cancel_and_wait(self._loop_task)
            self._loop_task = None
        running = list(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=self.stop_grace_seconds)
            await cancel_and_wait(*pending)
        self._running.clear()

    # -- internals ------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self.concurrency - len(self._running)
            if free > 0 and self._kinds:
                try:
                    await self._claim(free)
                except Exception:
                    log.exception("claiming jobs failed; retrying at the next poll")
            # Woken early by an enqueue, a retry coming due, or a handler freeing its slot.
            await self._sleep()

    async def _sleep(self) -> None:
        await wait_event(self._wake, self.poll_seconds)

    async def _claim(self, free: int) -> int:
        # Claim per kind so each gets its own lease length.
        total = 0
        for kind, spec in list(self._kinds.items()):
            if free - total <= 0:
                break
            jobs = await self.queue.claim(
                self.worker_id, [kind], free - total, spec.policy.lease_seconds
            )
            for job in jobs:
                task = asyncio.create_task(self._run(job, spec), name=f"job-{job.id}")
                self._running[job.id] = task
            total += len(jobs)
        return total

    async def _run(self, job: Job, spec: _Kind) -> None:
        try:
            # The attempt and its outcome act for the job's tenant (encryption at rest).
            async with tenant_scope(job.tenant_id) if job.tenant_id else contextlib.nullcontext():
                await self._attempt(job, spec)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("recording the outcome of job %s failed; its lease will expire", job.id)
        finally:
            self._running.pop(job.id, None)
            self.notify()  # a slot is free

    async def _attempt(self, job: Job, spec: _Kind) -> None:
        try:
            result = await self._call(job, spec)
        except asyncio.CancelledError:
            raise  # stopping: the lease will expire and the job runs again
        except JobFailure as exc:
            await self._failed(job, spec, exc.message, exc.result, retry=exc.retry)
        except Exception as exc:
            log.warning("job %s (%s) attempt %s failed", job.id, job.kind, job.attempts,
                        exc_info=True)  # fmt: skip
            await self._failed(job, spec, f"{type(exc).__name__}: {exc}", None, retry=True)
        else:
            await self.queue.complete(job.id, result, worker_id=self.worker_id)

    async def _call(self, job: Job, spec: _Kind) -> dict[str, Any] | None:
        """The handler, with its lease renewed every third of its length while it runs, so a
        long handler keeps its job; once renewal stops, the lease runs out."""
        lease = spec.policy.lease_seconds

        async def keep_lease() -> None:
            while True:
                await asyncio.sleep(lease / 3)
                try:
                    await self.queue.extend(self.worker_id, [job.id], lease)
                except Exception:
                    log.exception("renewing the lease of job %s failed", job.id)

        keeper = asyncio.create_task(keep_lease(), name=f"lease-{job.id}")
        try:
            return await spec.handler(job)
        finally:
            keeper.cancel()

    async def _failed(
        self, job: Job, spec: _Kind, message: str, result: dict[str, Any] | None, *, retry: bool
    ) -> None:
        delay = spec.policy.delay(job.attempts)
        retry_at = utcnow() + timedelta(seconds=delay) if retry else None
        status = await self.queue.fail(
            job.id, message, retry_at, result=result, worker_id=self.worker_id
        )
        if status == "dead":
            log.warning("job %s (%s) is dead after %s attempts: %s",
                        job.id, job.kind, job.attempts, message)  # fmt: skip
        elif status == "pending":
            # Wake up for the retry even if nothing else happens before the next poll.
            asyncio.get_running_loop().call_later(delay, self.notify)
