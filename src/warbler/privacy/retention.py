"""Retention policies: per tenant, how many days messages, files, logs and the audit log
are kept, and the sweep that deletes what is older.

Messages are deleted outright (not tombstoned): a conversation's oldest messages go, so its
history simply starts later. ``last_seq`` and the numbers of the messages that remain do not
change, unread counts do not move, and history pages (by ``before_seq``/``after_seq``) read
what is left. With each message go its search-index row, delete-for-me marks, resume-log
events, the jobs keyed by them (bot replies, webhook deliveries), its attached file when no
remaining message shows it, and the bots' running summaries of its conversation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import InvalidRequest
from warbler.files.store import FileStore
from warbler.im.principal import Principal
from warbler.privacy import purge
from warbler.security.audit import AuditLog, actor_of
from warbler.security.encryption import tenant_scope
from warbler.store.db import Database
from warbler.store.models import Event, Job, Message, MessageHide, StoredFile
from warbler.store.models_ai import AiUsage
from warbler.store.models_privacy import RetentionPolicy
from warbler.store.models_support import SupportNote, SupportTicket, SupportTransition

log = logging.getLogger(__name__)

KINDS = ("messages_days", "files_days", "logs_days", "audit_days")
MAX_DAYS = 36_500
FINISHED = ("done", "dead")


def policy_view(p: RetentionPolicy | None) -> dict[str, Any]:
    return {
        "messages_days": p.messages_days if p else None,
        "files_days": p.files_days if p else None,
        "logs_days": p.logs_days if p else None,
        "audit_days": p.audit_days if p else None,
        "updated_at": p.updated_at if p else None,
        "updated_by": p.updated_by if p else None,
        "last_sweep_at": p.last_sweep_at if p else None,
        "last_sweep": dict(p.last_sweep) if p else {},
    }


@dataclass(slots=True)
class Cutoffs:
    messages: datetime | None
    files: datetime | None
    logs: datetime | None
    audit: datetime | None

    @classmethod
    def of(cls, p: RetentionPolicy, now: datetime) -> Cutoffs:
        def at(days: int | None) -> datetime | None:
            return None if days is None else now - timedelta(days=days)

        return cls(at(p.messages_days), at(p.files_days), at(p.logs_days), at(p.audit_days))


class RetentionService:
    def __init__(
        self, db: Database, files: FileStore, audit: AuditLog, sweep_lease_seconds: float
    ) -> None:
        self.db = db
        self.files = files
        self.audit = audit
        self.lease = timedelta(seconds=max(60.0, sweep_lease_seconds))

    # -- the policy ----------------------------------------------------------------------

    async def get(self, principal: Principal) -> dict[str, Any]:
        principal.require_admin()
        async with self.db.read() as s:
            return policy_view(await s.get(RetentionPolicy, principal.tenant_id))

    async def put(self, principal: Principal, values: dict[str, int | None]) -> dict[str, Any]:
        """Replace the tenant's policy (a missing or null period: keep forever)."""
        principal.require_admin()
        for name in KINDS:
            days = values.get(name)
            if days is not None and not 1 <= days <= MAX_DAYS:
                raise InvalidRequest(
                    f"{name} must be 1 to {MAX_DAYS} days, or null to keep forever",
                    details={"field": name},
                )
        now = utcnow()
        async with self.db.write() as s:
            row = await s.get(RetentionPolicy, principal.tenant_id)
            before = policy_view(row)
            if row is None:
                row = RetentionPolicy(tenant_id=principal.tenant_id, last_sweep={})
                s.add(row)
            for name in KINDS:
                setattr(row, name, values.get(name))
            row.updated_at = now
            row.updated_by = actor_of(principal)[0]
            await self.audit.record_in(
                s, tenant_id=principal.tenant_id, actor=principal, action="settings.retention",
                target_type="tenant", target_id=principal.tenant_id,
                data={"before": {k: before[k] for k in KINDS},
                      "after": {k: values.get(k) for k in KINDS}},
            )  # fmt: skip
            await s.flush()
            return policy_view(row)

    # -- the sweep -----------------------------------------------------------------------

    async def sweep_now(self, principal: Principal) -> dict[str, Any]:
        """An admin's sweep of their own tenant, now (recorded even if nothing was due)."""
        principal.require_admin()
        counts = await self.sweep(principal.tenant_id, actor=principal, force=True)
        return counts or {}

    async def due_tenants(self) -> list[str]:
        async with self.db.read() as s:
            rows = await s.scalars(
                select(RetentionPolicy.tenant_id).where(
                    or_(*(getattr(RetentionPolicy, k).is_not(None) for k in KINDS))
                )
            )
            return list(rows.all())

    async def sweep(
        self, tenant_id: str, *, actor: Principal | None = None, force: bool = False
    ) -> dict[str, int] | None:
        """Delete what the tenant's policy says is too old. Returns the counts, or None when
        another node holds the tenant's sweep lease. Recorded in the audit log
        (``retention.sweep``) when anything was deleted, or always when ``force``."""
        async with tenant_scope(tenant_id):  # what it rewrites is encrypted with its key
            return await self._claim_and_sweep(tenant_id, actor, force)

    async def _claim_and_sweep(
        self, tenant_id: str, actor: Principal | None, force: bool
    ) -> dict[str, int] | None:
        now = utcnow()
        async with self.db.write() as s:
            claimed: Any = await s.execute(
                update(RetentionPolicy)
                .where(
                    RetentionPolicy.tenant_id == tenant_id,
                    or_(
                        RetentionPolicy.sweep_lease_until.is_(None),
                        RetentionPolicy.sweep_lease_until < now,
                    ),
                )
                .values(sweep_lease_until=now + self.lease)
            )
            policy = await s.get(RetentionPolicy, tenant_id)
        if policy is None:
            counts: dict[str, int] = {}
        elif not claimed.rowcount:
            return None
        else:
            try:
                counts = await self._sweep(tenant_id, Cutoffs.of(policy, now), actor)
            except BaseException:
                async with self.db.write() as s:  # let the next pass (any node) retry
                    await s.execute(
                        update(RetentionPolicy)
                        .where(RetentionPolicy.tenant_id == tenant_id)
                        .values(sweep_lease_until=None)
                    )
                raise
        deleted = any(counts.values())
        async with self.db.write() as s:
            await s.execute(
                update(RetentionPolicy)
                .where(RetentionPolicy.tenant_id == tenant_id)
                .values(sweep_lease_until=None, last_sweep_at=utcnow(), last_sweep=counts)
            )
            if deleted or force:
                await self.audit.record_in(
                    s, tenant_id=tenant_id, actor=actor, action="retention.sweep",
                    target_type="tenant", target_id=tenant_id, data={"counts": counts},
                )  # fmt: skip
        if deleted:
            log.info("retention sweep of tenant %s deleted %s", tenant_id, counts)
        return counts

    async def _sweep(self, tenant_id: str, cut: Cutoffs, actor: Principal | None) -> dict[str, int]:
        counts: dict[str, int] = {}

        def add(name: str, n: int) -> None:
            counts[name] = counts.get(name, 0) + n

        if cut.messages is not None:
            await self._messages(tenant_id, cut.messages, add)
        if cut.files is not None:
            await self._files(tenant_id, cut.files, add)
        if cut.logs is not None:
            await self._logs(tenant_id, cut.logs, add)
        if cut.audit is not None:
            add("audit_entries", await self.audit.purge_before(tenant_id, cut.audit, actor=actor))
        await purge.compact(self.db, search=counts.get("search_rows", 0) > 0)
        return counts

    async def _messages(self, tenant_id: str, cutoff: datetime, add: Any) -> None:
        async with self.db.read() as s:
            keys = await purge.JobKeys.load(s, tenant_id)
        while True:
            async with self.db.read() as s:
                batch = (
                    await s.execute(
                        select(Message.id, Message.conversation_id, Message.file_id)
                        .where(Message.tenant_id == tenant_id, Message.created_at < cutoff)
                        .order_by(Message.created_at)
                        .limit(purge.BATCH)
                    )
                ).all()
            if not batch:
                break
            ids = [m for m, _, _ in batch]
            # Attachments go with their message unless a message that stays still shows them.
            attached = {f for _, _, f in batch if f}
            if attached:
                async with self.db.read() as s:
                    shown = set(
                        (
                            await s.scalars(
                                select(Message.file_id).where(
                                    Message.file_id.in_(attached), Message.id.not_in(ids)
                                )
                            )
                        ).all()
                    )
                add("files", await purge.delete_files(self.db, self.files, tenant_id,
                                                      sorted(attached - shown)))  # fmt: skip
            async with self.db.write() as s:
                await purge.secure_delete(s)
                add("search_rows", await purge.remove_search_rows(s, ids))
                await s.execute(delete(MessageHide).where(MessageHide.message_id.in_(ids)))
                events = await purge.delete_message_events(s, tenant_id, ids)
                add("events", len(events))
                add("jobs", await keys.delete_jobs(s, tenant_id, ids, events))
                add("ai_summaries", await purge.forget_ai_memory(
                    s, tenant_id, {c for _, c, _ in batch}))  # fmt: skip
                result: Any = await s.execute(delete(Message).where(Message.id.in_(ids)))
                add("messages", int(result.rowcount or 0))
        async with self.db.write() as s:
            await purge.secure_delete(s)
            await self._support_text(s, tenant_id, cutoff, add)

    @staticmethod
    async def _support_text(s: AsyncSession, tenant_id: str, cutoff: datetime, add: Any) -> None:
        """Support notes are messages among agents; a resolved ticket's summary and CSAT
        comment quote the conversation: they go with the messages (scores and times stay)."""
        notes: Any = await s.execute(
            delete(SupportNote).where(
                SupportNote.tenant_id == tenant_id, SupportNote.created_at < cutoff
            )
        )
        add("support_notes", int(notes.rowcount or 0))
        tickets: Any = await s.execute(
            update(SupportTicket)
            .where(
                SupportTicket.tenant_id == tenant_id,
                SupportTicket.resolved_at < cutoff,
                or_(
                    SupportTicket.summary.is_not(None),
                    SupportTicket.csat_comment.is_not(None),
                ),
            )
            .values(summary=None, csat_comment=None, reason_detail={})
        )
        add("support_tickets_cleared", int(tickets.rowcount or 0))

    async def _files(self, tenant_id: str, cutoff: datetime, add: Any) -> None:
        while True:
            async with self.db.read() as s:
                ids = list(
                    (
                        await s.scalars(
                            select(StoredFile.id)
                            .where(
                                StoredFile.tenant_id == tenant_id, StoredFile.created_at < cutoff
                            )
                            .limit(purge.BATCH)
                        )
                    ).all()
                )
            if not ids:
                return
            add("files", await purge.delete_files(self.db, self.files, tenant_id, ids))

    async def _logs(self, tenant_id: str, cutoff: datetime, add: Any) -> None:
        """The event resume log, finished jobs (webhook deliveries among them), AI usage rows
        (the current month's stay: quotas sum them) and support state transitions."""
        month = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
        targets: list[tuple[str, Any, list[Any]]] = [
            ("events", Event, [Event.tenant_id == tenant_id, Event.created_at < cutoff]),
            ("jobs", Job, [Job.tenant_id == tenant_id, Job.status.in_(FINISHED),
                           Job.updated_at < cutoff]),
            ("ai_usage", AiUsage, [AiUsage.tenant_id == tenant_id,
                                   AiUsage.created_at < min(cutoff, month)]),
            ("support_transitions", SupportTransition, [
                SupportTransition.tenant_id == tenant_id, SupportTransition.created_at < cutoff]),
        ]  # fmt: skip
        for name, model, where in targets:
            add(name, await purge.delete_where(self.db, model, *where))
