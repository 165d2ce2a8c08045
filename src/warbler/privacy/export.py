"""A user's data export: asked for by the user or a tenant admin, built by a durable job
into a zip (``privacy/archive.py``) kept under ``DATA_DIR/exports`` until it expires.

Only the user themself and the tenant's admins can see or download it; anyone else gets the
same 404 as for an export that does not exist. A new export of the same user replaces the
older archives once it is ready; the retention sweeper deletes archives past ``expires_at``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, update

from warbler.clock import utcnow
from warbler.errors import NotFound
from warbler.files.store import FileStore
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.jobs.queue import JobQueue
from warbler.jobs.runner import JobFailure, RetryPolicy
from warbler.privacy.archive import ArchiveWriter
from warbler.security.audit import AuditLog, actor_of
from warbler.store.db import Database
from warbler.store.models import Job, User
from warbler.store.models_privacy import PrivacyExport

log = logging.getLogger(__name__)

EXPORT_KIND = "privacy.export"
POLICY = RetryPolicy(base_seconds=5.0, max_seconds=300.0, lease_seconds=120.0)
ACTIVE = ("pending", "running")
_READ_BYTES = 64 * 1024


def export_view(e: PrivacyExport) -> dict[str, Any]:
    return {
        "id": e.id,
        "user_id": e.user_id,
        "requested_by": e.requested_by,
        "status": e.status,
        "size": e.size,
        "sha256": e.sha256,
        "counts": dict(e.counts or {}),
        "error": e.error,
        "created_at": e.created_at,
        "completed_at": e.completed_at,
        "expires_at": e.expires_at,
    }


class ExportService:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        store: FileStore,
        files: FileStore,
        audit: AuditLog,
        *,
        ttl_hours: int,
        work_dir: Path,
    ) -> None:
        self.db = db
        self.queue = queue
        self.store = store  # the archives
        self.files = files  # conversation files (the user's uploads go into the archive)
        self.audit = audit
        self.ttl = timedelta(hours=ttl_hours)
        self.work_dir = work_dir

    async def request(self, principal: Principal, user_id: str | None = None) -> dict[str, Any]:
        """Queue an export of ``user_id`` (admins) or of the caller (``None``). While one of
        the same user is pending or running, that one is returned instead."""
        if user_id is None:
            user_id = principal.require_user()
        elif user_id != principal.user_id:
            principal.require_admin()
        async with self.db.write_then() as (s, after):
            user = await s.scalar(
                select(User.id).where(User.tenant_id == principal.tenant_id, User.id == user_id)
            )
            if user is None:
                raise NotFound("no such user", details={"user_id": user_id})
            active = await s.scalar(
                select(PrivacyExport).where(
                    PrivacyExport.tenant_id == principal.tenant_id,
                    PrivacyExport.user_id == user_id,
                    PrivacyExport.status.in_(ACTIVE),
                )
            )
            if active is not None:
                return export_view(active)
            row = PrivacyExport(
                id=new_id(), tenant_id=principal.tenant_id, user_id=user_id,
                requested_by=actor_of(principal)[0], status="pending", size=0, counts={},
                created_at=utcnow(),
            )  # fmt: skip
            s.add(row)
            await self.queue.enqueue_in(
                s, EXPORT_KIND, {"export_id": row.id}, tenant_id=principal.tenant_id,
                ref=row.id, dedupe_key=f"{EXPORT_KIND}:{row.id}", max_attempts=3, after=after,
            )  # fmt: skip
            await self.audit.record_in(
                s, tenant_id=principal.tenant_id, actor=principal, action="privacy.export",
                target_type="user", target_id=user_id, data={"export_id": row.id},
            )  # fmt: skip
            await s.flush()
            return export_view(row)

    async def list_exports(self, principal: Principal) -> list[dict[str, Any]]:
        """Admins: every export of the tenant; others: exports of their own data."""
        stmt = select(PrivacyExport).where(PrivacyExport.tenant_id == principal.tenant_id)
        if not _is_admin(principal):
            stmt = stmt.where(PrivacyExport.user_id == principal.require_user())
        async with self.db.read() as s:
            rows = (await s.scalars(stmt.order_by(PrivacyExport.id.desc()).limit(200))).all()
        return [export_view(e) for e in rows]

    async def get(self, principal: Principal, export_id: str) -> dict[str, Any]:
        return export_view(await self._load(principal, export_id))

    async def open(
        self, principal: Principal, export_id: str
    ) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """The archive's bytes (audited as ``privacy.export_download``)."""
        row = await self._load(principal, export_id)
        if row.status != "ready" or row.storage_key is None:
            raise NotFound(
                f"the export is {row.status}, not ready to download",
                details={"export_id": export_id, "status": row.status},
            )
        try:
            chunks = await self.store.open(row.storage_key)
        except FileNotFoundError:
            raise NotFound(
                "the export's archive is gone", details={"export_id": export_id}
            ) from None
        await self.audit.record(
            tenant_id=principal.tenant_id, actor=principal, action="privacy.export_download",
            target_type="user", target_id=row.user_id, data={"export_id": row.id},
        )  # fmt: skip
        return export_view(row), chunks

    async def _load(self, principal: Principal, export_id: str) -> PrivacyExport:
        async with self.db.read() as s:
            row = await s.scalar(
                select(PrivacyExport).where(
                    PrivacyExport.id == export_id, PrivacyExport.tenant_id == principal.tenant_id
                )
            )
        if row is None or not (_is_admin(principal) or row.user_id == principal.user_id):
            raise NotFound("no such export", details={"export_id": export_id})
        return row

    # -- the job -------------------------------------------------------------------------

    async def run(self, job: Job) -> dict[str, Any]:
        """The ``privacy.export`` job handler: build the archive, store it, mark it ready."""
        export_id = job.payload["export_id"]
        async with self.db.write() as s:
            row = await s.scalar(
                select(PrivacyExport).where(
                    PrivacyExport.id == export_id, PrivacyExport.tenant_id == job.tenant_id
                )
            )
            if row is None or row.status not in ACTIVE:
                raise JobFailure("the export was removed or already finished", retry=False)
            row.status = "running"
            tenant_id, user_id = row.tenant_id, row.user_id
        key = f"{tenant_id}/{export_id}.zip"
        try:
            # An unnamed temporary file (gone when closed, even after a crash) beside the
            # store, so a large archive never has to fit in memory.
            with tempfile.TemporaryFile(dir=self.work_dir) as tmp:
                writer = ArchiveWriter(self.db, self.files, tenant_id, user_id)
                counts = await writer.write(tmp, export_id)
                size, digest = await asyncio.to_thread(_measure, tmp)
                await self.store.put(key, _read(tmp))
        except Exception as exc:
            log.exception("export %s failed", export_id)
            await self._finish(export_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            raise JobFailure("building the archive failed", retry=False) from exc
        now = utcnow()
        kept = await self._finish(
            export_id, status="ready", storage_key=key, size=size, sha256=digest,
            counts=counts, completed_at=now, expires_at=now + self.ttl,
        )  # fmt: skip
        if not kept:  # erased while it was being built: the archive must not stay
            await self.store.delete(key)
            return {"export_id": export_id, "discarded": True}
        await self._replace_older(tenant_id, user_id, export_id)
        return {"export_id": export_id, "size": size}

    async def _finish(self, export_id: str, **values: Any) -> bool:
        async with self.db.write() as s:
            result: Any = await s.execute(
                update(PrivacyExport)
                .where(PrivacyExport.id == export_id, PrivacyExport.status == "running")
                .values(**values)
            )
        return bool(result.rowcount)

    async def _replace_older(self, tenant_id: str, user_id: str, newest: str) -> None:
        async with self.db.read() as s:
            older = (
                await s.scalars(
                    select(PrivacyExport.id).where(
                        PrivacyExport.tenant_id == tenant_id,
                        PrivacyExport.user_id == user_id,
                        PrivacyExport.status == "ready",
                        PrivacyExport.id != newest,
                    )
                )
            ).all()
        await self.expire(ids=list(older))

    # -- removal -------------------------------------------------------------------------

    async def expire(self, *, ids: list[str] | None = None) -> int:
        """Delete the archives of these exports (default: every export past ``expires_at``);
        the rows stay as ``expired``. Bytes first, so no archive outlives its row."""
        stmt = select(PrivacyExport.id, PrivacyExport.storage_key)
        if ids is None:
            stmt = stmt.where(PrivacyExport.status == "ready", PrivacyExport.expires_at < utcnow())
        else:
            stmt = stmt.where(PrivacyExport.id.in_(ids))
        async with self.db.read() as s:
            rows = (await s.execute(stmt)).all()
        for _, key in rows:
            if key:
                await self.store.delete(key)
        if rows:
            async with self.db.write() as s:
                await s.execute(
                    update(PrivacyExport)
                    .where(PrivacyExport.id.in_([r[0] for r in rows]))
                    .values(status="expired", storage_key=None)
                )
        return len(rows)

    async def delete_for_user(self, tenant_id: str, user_id: str) -> int:
        """Erasure: every export of the user goes, rows and archives."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(PrivacyExport.id, PrivacyExport.storage_key).where(
                        PrivacyExport.tenant_id == tenant_id, PrivacyExport.user_id == user_id
                    )
                )
            ).all()
        for export_id, key in rows:
            await self.store.delete(key or f"{tenant_id}/{export_id}.zip")
        if rows:
            async with self.db.write() as s:
                for export_id, _ in rows:
                    row = await s.get(PrivacyExport, export_id)
                    if row is not None:
                        await s.delete(row)
        return len(rows)


def _is_admin(principal: Principal) -> bool:
    return principal.is_tenant_admin or (
        principal.api_key_id is not None and principal.has_scope("admin")
    )


def _measure(fh: IO[bytes]) -> tuple[int, str]:
    fh.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := fh.read(_READ_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


async def _read(fh: IO[bytes]) -> AsyncIterator[bytes]:
    fh.seek(0)
    while chunk := await asyncio.to_thread(fh.read, _READ_BYTES):
        yield chunk
