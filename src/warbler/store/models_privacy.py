"""Privacy tables (``warbler/privacy/``): per-tenant retention policies and data exports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from warbler.store.models import ID, Base


class RetentionPolicy(Base):
    """How long a tenant keeps its data, in days; ``None`` keeps it forever."""

    __tablename__ = "privacy_retention"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    messages_days: Mapped[int | None] = mapped_column(Integer)
    files_days: Mapped[int | None] = mapped_column(Integer)
    # Operational logs: the event resume log, jobs (webhook deliveries among them), AI usage
    # rows, support state transitions. The audit log has its own period (auditors' needs).
    logs_days: Mapped[int | None] = mapped_column(Integer)
    audit_days: Mapped[int | None] = mapped_column(Integer)
    updated_by: Mapped[str | None] = mapped_column(String(26))
    updated_at: Mapped[datetime]
    last_sweep_at: Mapped[datetime | None]
    last_sweep: Mapped[dict[str, Any]] = mapped_column(default=dict)  # counts by kind
    # One node sweeps a tenant at a time: it holds this lease while it does.
    sweep_lease_until: Mapped[datetime | None]


class PrivacyExport(Base):
    """One export of a user's data: a zip built by a durable job, kept until ``expires_at``."""

    __tablename__ = "privacy_exports"
    __table_args__ = (Index("ix_privacy_exports_user", "tenant_id", "user_id"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(26))  # whose data
    requested_by: Mapped[str | None] = mapped_column(String(26))  # a user or an API key id
    status: Mapped[str] = mapped_column(String(16))  # pending | running | ready | failed | expired
    storage_key: Mapped[str | None] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
