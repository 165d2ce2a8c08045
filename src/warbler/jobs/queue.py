"""The durable job queue: jobs live in the ``jobs`` table, so they survive restarts and crashes.

A worker *claims* due jobs by taking a lease (``locked_by``/``locked_until``). While the lease
holds, no other worker takes the job; if the worker dies, the lease runs out and the job is due
again. ``attempts`` counts claims, so a job that keeps crashing its worker still ends ``dead``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.store.db import Database
from warbler.store.models import Job

STATUSES = ("pending", "running", "done", "dead")
DEFAULT_MAX_ATTEMPTS = 5
MAX_ERROR_CHARS = 2000


def full_error(job: Job) -> str | None:
    """``last_error`` joined with ``result["error_detail"]``: a handler puts there what may
    quote user data (a webhook receiver's answer), since results are encrypted at rest and
    ``last_error`` is not."""
    detail = (job.result or {}).get("error_detail")
    if job.last_error and detail:
        return f"{job.last_error}: {detail}"
    return job.last_error


def job_view(job: Job) -> dict[str, Any]:
    """What admins see of a job (no traceback is ever stored, only the error message)."""
    return {
        "id": job.id,
        "kind": job.kind,
        "ref": job.ref,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "run_at": job.run_at,
        "locked_by": job.locked_by,
        "locked_until": job.locked_until,
        "last_error": full_error(job),
        "result": job.result,
        "payload": job.payload,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


class JobQueue:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, callback: Callable[[], None]) -> None:
        """``callback`` runs (synchronously) after a job is enqueued or retried on this node,
        so a runner can start it now instead of at its next poll."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    # -- enqueue -------------------------------------------------------------------------

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant_id: str | None,
        ref: str | None = None,
        dedupe_key: str | None = None,
        run_at: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Job:
        """Enqueue in a transaction of its own. With ``dedupe_key``, enqueueing twice returns
        the job stored the first time."""
        async with self.db.write() as s:
            job = await self.enqueue_in(
                s, kind, payload, tenant_id=tenant_id, ref=ref, dedupe_key=dedupe_key,
                run_at=run_at, max_attempts=max_attempts,
            )  # fmt: skip
        self._notify()
        return job

    async def enqueue_in(
        self,
        session: AsyncSession,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant_id: str | None,
        ref: str | None = None,
        dedupe_key: str | None = None,
        run_at: datetime | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        after: list[Callable[[], None]] | None = None,
    ) -> Job:
        """Enqueue inside the caller's transaction, so the job exists iff the change that
        caused it commits. Pass ``db.write_then()``'s ``after`` list to wake runners on commit.
        """
        if max_attempts < 1:
            raise InvalidRequest("max_attempts must be at least 1")
        now = utcnow()
        values: dict[str, Any] = {
            "id": new_id(),
            "tenant_id": tenant_id,
            "kind": kind,
            "ref": ref,
            "dedupe_key": dedupe_key,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_at": run_at or now,
            "created_at": now,
            "updated_at": now,
        }
        if tenant_id is not None:
            await ensure_keys(tenant_id)  # the payload is encrypted under the tenant's key
        with bound_tenant(tenant_id) if tenant_id else contextlib.nullcontext():
            if dedupe_key is None:
                job = Job(**values)
                session.add(job)
                await session.flush()
            else:
                # ON CONFLICT DO NOTHING: two nodes enqueueing the same key race safely, and
                # the caller's transaction is not aborted by a unique violation.
                insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
                await session.execute(
                    insert(Job)
                    .values(**values)
                    .on_conflict_do_nothing(index_elements=["dedupe_key"])
                )
                stored = await session.scalar(select(Job).where(Job.dedupe_key == dedupe_key))
                assert stored is not None  # inserted now, or by whoever won the race
                job = stored
        if after is not None:
            after.append(self._notify)
        return job

    # -- workers ---------------------------------------------------------------------------

    async def claim(
        self, worker_id: str, kinds: Iterable[str], limit: int, lease_seconds: float
    ) -> list[Job]:
        """Atomically take up to ``limit`` due jobs of ``kinds`` and lease them to
        ``worker_id``. Due: pending and ``run_at`` reached, or running with an expired lease
        (its worker crashed). Each claim counts as an attempt."""
        kinds = list(kinds)
        if limit <= 0 or not kinds:
            return []
        now = utcnow()
        expired = and_(Job.status == "running", Job.locked_until < now)
        due_now = or_(and_(Job.status == "pending", Job.run_at <= now), expired)
        # Idle polls only read: on SQLite the write lock is shared with every message send.
        async with self.db.read() as s:
            probe = select(Job.id).where(Job.kind.in_(kinds), due_now).limit(1)
            if await s.scalar(probe) is None:
                return []
        async with self.db.write() as s:
            # A worker that died during the last allowed attempt leaves nothing to retry.
            await s.execute(
                update(Job)
                .where(expired, Job.attempts >= Job.max_attempts, Job.kind.in_(kinds))
                .values(
                    status="dead",
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                    last_error="the worker stopped during the last attempt (lease expired)",
                )
                .execution_options(synchronize_session=False)
            )
            due = (
                select(Job.id).where(Job.kind.in_(kinds), due_now).order_by(Job.run_at).limit(limit)
            )
            if not self.db.is_sqlite:
                # Concurrent nodes skip rows another node is claiming instead of waiting for
                # them or taking them twice. SQLite needs nothing: its writers are serialized.
                due = due.with_for_update(skip_locked=True)
            claimed = await s.scalars(
                update(Job)
                .where(Job.id.in_(due.scalar_subquery()))
                .values(
                    status="running",
                    locked_by=worker_id,
                    locked_until=now + timedelta(seconds=lease_seconds),
                    attempts=Job.attempts + 1,
                    updated_at=now,
                )
                .returning(Job)
                .execution_options(synchronize_session=False)
            )
            return list(claimed.all())

    async def extend(self, worker_id: str, job_ids: Iterable[str], lease_seconds: float) -> int:
        """Renew the leases this worker still holds (long handlers must not lose their job)."""
        ids = list(job_ids)
        if not ids:
            return 0
        now = utcnow()
        async with self.db.write() as s:
            result = await s.execute(
                update(Job)
                .where(Job.id.in_(ids), Job.status == "running", Job.locked_by == worker_id)
                .values(locked_until=now + timedelta(seconds=lease_seconds), updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def complete(
        self, job_id: str, result: dict[str, Any] | None = None, *, worker_id: str | None = None
    ) -> bool:
        """Mark done. With ``worker_id``, only while that worker still holds the lease
        (a worker whose lease expired and was taken over must not overwrite the new run)."""
        now = utcnow()
        conditions = [Job.id == job_id, Job.status == "running"]
        if worker_id is not None:
            conditions.append(Job.locked_by == worker_id)
        async with self.db.write() as s:
            done = await s.execute(
                update(Job)
                .where(*conditions)
                .values(
                    status="done",
                    result=result,
                    last_error=None,
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def fail(
        self,
        job_id: str,
        error: str,
        retry_at: datetime | None,
        *,
        result: dict[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> str | None:
        """Record a failed attempt: back to ``pending`` at ``retry_at``, or ``dead`` once the
        attempts are used up (or when ``retry_at`` is None: a failure retrying cannot fix).
        Returns the new status, or None when the job was no longer this worker's."""
        now = utcnow()
        conditions = [Job.id == job_id, Job.status == "running"]
        if worker_id is not None:
            conditions.append(Job.locked_by == worker_id)
        if retry_at is None:
            status: Any = "dead"
        else:
            status = case((Job.attempts >= Job.max_attempts, "dead"), else_="pending")
        async with self.db.write() as s:
            row = await s.execute(
                update(Job)
                .where(*conditions)
                .values(
                    status=status,
                    run_at=retry_at or now,
                    last_error=error[:MAX_ERROR_CHARS],
                    result=result,
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                )
                .returning(Job.status)
                .execution_options(synchronize_session=False)
            )
            new_status = row.scalar_one_or_none()
        return new_status

    # -- admin -----------------------------------------------------------------------------

    async def get(self, tenant_id: str, job_id: str) -> Job:
        async with self.db.read() as s:
            job = await s.scalar(select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id))
        if job is None:
            raise NotFound("no such job", details={"job_id": job_id})
        return job

    async def list(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        kind: str | None = None,
        ref: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Job]:
        """A tenant's jobs, newest first; ``before`` is the last id of the previous page."""
        if status is not None and status not in STATUSES:
            raise InvalidRequest(
                f"status must be one of {', '.join(STATUSES)}", details={"field": "status"}
            )
        query = select(Job).where(Job.tenant_id == tenant_id)
        if status is not None:
            query = query.where(Job.status == status)
        if kind is not None:
            query = query.where(Job.kind == kind)
        if ref is not None:
            query = query.where(Job.ref == ref)
        if before is not None:
            query = query.where(Job.id < before)
        async with self.db.read() as s:
            return list((await s.scalars(query.order_by(Job.id.desc()).limit(limit))).all())

    async def retry(self, tenant_id: str, job_id: str, *, kind: str | None = None) -> Job:
        """Run a job again now with a fresh round of attempts: a dead one, a pending one
        waiting out its backoff, or a done one (to run it once more)."""
        now = utcnow()
        async with self.db.write() as s:
            query = select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)
            if kind is not None:
                query = query.where(Job.kind == kind)
            job = await s.scalar(query.with_for_update())
            if job is None:
                raise NotFound("no such job", details={"job_id": job_id})
            if job.status == "running" and job.locked_until is not None and job.locked_until > now:
                raise Conflict("the job is running now", details={"job_id": job_id})
            job.status = "pending"
            job.attempts = 0
            job.run_at = now
            job.locked_by = None
            job.locked_until = None
            job.updated_at = now
        self._notify()
        return job

    async def delete_for_ref(self, session: AsyncSession, tenant_id: str, ref: str) -> None:
        """Forget the jobs about a thing that is being deleted (in the caller's transaction)."""
        await session.execute(
            delete(Job)
            .where(Job.tenant_id == tenant_id, Job.ref == ref)
            .execution_options(synchronize_session=False)
        )
