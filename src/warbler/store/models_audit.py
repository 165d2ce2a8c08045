"""The audit log: one append-only row per sensitive action (``warbler/security/audit.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from warbler.store.audit_guard import install_for_create_all
from warbler.store.models import Base, EventId


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant_time", "tenant_id", "created_at"),
        Index("ix_audit_log_tenant_action", "tenant_id", "action"),
        # Listing pages newest first by id; the actor and target filters (migration 0006).
        Index("ix_audit_log_tenant_seq", "tenant_id", "id"),
        Index("ix_audit_log_tenant_actor", "tenant_id", "actor_id"),
        Index("ix_audit_log_tenant_target", "tenant_id", "target_type", "target_id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    # Who: a user id, or an API key id (actor_kind "api_key"), or None with actor_kind "system".
    actor_id: Mapped[str | None] = mapped_column(String(26))
    actor_kind: Mapped[str] = mapped_column(String(16))  # user | api_key | system | anonymous
    action: Mapped[str] = mapped_column(String(60))  # e.g. "auth.login", "support.read"
    target_type: Mapped[str | None] = mapped_column(String(40))  # "user", "conversation", ...
    target_id: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # never secrets or bodies
    created_at: Mapped[datetime]


install_for_create_all(AuditEntry.__table__)


class AuditPurgeGrant(Base):
    """The one way rows leave ``audit_log``: the database refuses UPDATE and DELETE on it
    (triggers, ``warbler/store/audit_guard.py``) unless the deleted row's tenant has a grant
    here whose ``cutoff`` is after the row's ``created_at``. ``AuditLog.purge_before`` inserts
    the grant, deletes, and removes the grant in one transaction, so no grant is ever
    visible to another transaction and this table is always empty between transactions."""

    __tablename__ = "audit_purge_grants"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    cutoff: Mapped[datetime]
