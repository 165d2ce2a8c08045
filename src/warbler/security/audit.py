"""The audit log: who did what to what, when, from where. Append-only.

Domain services call ``record_in`` inside the transaction that performs the action, so an
action and its audit row commit together or not at all::

    await services.audit.record_in(
        s, tenant_id=principal.tenant_id, actor=principal, action="support.read",
        target_type="conversation", target_id=conversation_id,
    )

The source IP and user agent come from the request being served (``request_context``, set
by the API middleware); jobs and CLI commands record none. ``data`` holds identifiers and
settings names, never secrets or message bodies.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models_audit import AuditEntry, AuditPurgeGrant

EXPORT_BATCH = 500
# Reads repeated by the same actor on the same target within ``once_per_seconds`` are one
# entry (per node): an agent's console re-reading a conversation every 2 s is one read.
_RECENT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class RequestInfo:
    ip: str | None = None
    user_agent: str | None = None


# Set per request by the API middleware; empty outside a request.
request_context: contextvars.ContextVar[RequestInfo] = contextvars.ContextVar(
    "warbler_request_context",
    default=RequestInfo(),  # noqa: B039 (frozen)
)


def actor_of(actor: Principal | str | None) -> tuple[str | None, str]:
    """(actor_id, actor_kind) for a principal, a bare user id, or the system (None)."""
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return actor, "user"
    if actor.user_id is not None:
        return actor.user_id, "user"
    if actor.api_key_id is not None:
        return actor.api_key_id, "api_key"
    return None, "anonymous"


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._recent: dict[tuple[Any, ...], float] = {}

    async def record_in(
        self,
        s: AsyncSession,
        *,
        tenant_id: str,
        actor: Principal | str | None,
        action: str,
        target_type: str | None = None,
        target_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Add one entry to the caller's transaction."""
        actor_id, actor_kind = actor_of(actor)
        info = request_context.get()
        s.add(
            AuditEntry(
                tenant_id=tenant_id, actor_id=actor_id, actor_kind=actor_kind, action=action,
                target_type=target_type, target_id=target_id, ip=info.ip,
                user_agent=(info.user_agent or None) and info.user_agent[:300],
                data=data or {}, created_at=utcnow(),
            )
        )  # fmt: skip

    async def record(self, *, once_per_seconds: float | None = None, **kwargs: Any) -> None:
        """Record in a transaction of its own (when the action itself wrote nothing, e.g. a
        failed login or an agent reading a conversation).

        With ``once_per_seconds``, the same actor doing the same action on the same target
        again within that many seconds adds no entry on this node (polling reads)."""
        if once_per_seconds is not None and self._seen_recently(kwargs, once_per_seconds):
            return
        async with self.db.write() as s:
            await self.record_in(s, **kwargs)

    def _seen_recently(self, kwargs: dict[str, Any], window: float) -> bool:
        key = (
            kwargs["tenant_id"], actor_of(kwargs.get("actor")), kwargs["action"],
            kwargs.get("target_type"), kwargs.get("target_id"),
        )  # fmt: skip
        now = time.monotonic()
        last = self._recent.get(key)
        if last is not None and now - last < window:
            return True
        if len(self._recent) >= _RECENT_MAX:
            self._recent = {k: v for k, v in self._recent.items() if now - v < window}
            if len(self._recent) >= _RECENT_MAX:
                self._recent.clear()
        self._recent[key] = now
        return False

    # -- reading -------------------------------------------------------------------------

    async def query(
        self,
        tenant_id: str,
        *,
        action: str | None = None,
        actor_id: str | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Entries of one tenant, newest first. ``action`` matches exactly, or every action
        under a prefix when it ends in ``.*`` (``auth.*``). ``since`` is inclusive, ``until``
        exclusive; ``before_id`` pages on (the last id of the previous page)."""
        stmt = _filtered(
            tenant_id, action=action, actor_id=actor_id, target_type=target_type,
            target_id=target_id, since=since, until=until,
        )  # fmt: skip
        if before_id is not None:
            stmt = stmt.where(AuditEntry.id < before_id)
        stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
        async with self.db.read() as s:
            return [entry_view(e) for e in (await s.scalars(stmt)).all()]

    async def export(
        self, tenant_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every entry of the range, oldest first, read in batches (one short read each, so
        a long download holds no transaction open)."""
        after = 0
        while True:
            stmt = (
                _filtered(tenant_id, since=since, until=until)
                .where(AuditEntry.id > after)
                .order_by(AuditEntry.id)
                .limit(EXPORT_BATCH)
            )
            async with self.db.read() as s:
                rows = (await s.scalars(stmt)).all()
            for row in rows:
                yield entry_view(row)
            if len(rows) < EXPORT_BATCH:
                return
            after = rows[-1].id

    # -- the one way out -----------------------------------------------------------------

    async def purge_before(
        self, tenant_id: str, cutoff: datetime, *, actor: Principal | str | None = None
    ) -> int:
        """Delete the tenant's entries created before ``cutoff``; returns how many. The only
        deletion the database allows on ``audit_log`` (``store/audit_guard.py``): a grant row
        for (tenant, cutoff) is inserted, the rows are deleted, and the grant is removed, all
        in one transaction. When rows were deleted, an ``audit.purged`` entry (``cutoff``,
        ``deleted``) is added in the same transaction; it is newer than ``cutoff`` unless
        ``cutoff`` is in the future, and stays."""
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware")
        async with self.db.write() as s:
            grant = AuditPurgeGrant(id=new_id(), tenant_id=tenant_id, cutoff=cutoff)
            s.add(grant)
            await s.flush()
            result = await s.execute(
                delete(AuditEntry).where(
                    AuditEntry.tenant_id == tenant_id, AuditEntry.created_at < cutoff
                )
            )
            await s.execute(delete(AuditPurgeGrant).where(AuditPurgeGrant.id == grant.id))
            deleted = int(result.rowcount or 0)  # type: ignore[attr-defined]
            if deleted:
                await self.record_in(
                    s, tenant_id=tenant_id, actor=actor, action="audit.purged",
                    data={"cutoff": cutoff.isoformat(), "deleted": deleted},
                )  # fmt: skip
        return deleted


def _filtered(
    tenant_id: str,
    *,
    action: str | None = None,
    actor_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    if action is not None:
        if action.endswith(".*"):
            prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(AuditEntry.action.like(prefix + "%", escape="\\"))
        else:
            stmt = stmt.where(AuditEntry.action == action)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if target_type is not None:
        stmt = stmt.where(AuditEntry.target_type == target_type)
    if target_id is not None:
        stmt = stmt.where(AuditEntry.target_id == target_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.created_at < until)
    return stmt


def entry_view(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "created_at": e.created_at,
        "actor_id": e.actor_id,
        "actor_kind": e.actor_kind,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "data": e.data,
    }
