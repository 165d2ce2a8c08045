"""A tenant's PII redaction policy (``warbler/security/redaction/``): one row, or none for
the defaults (``WARBLER_REDACTION_DEFAULT_MODE``, every built-in detector, restore on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from warbler.store.models import ID, Base


class RedactionPolicy(Base):
    __tablename__ = "redaction_policies"
    tenant_id: Mapped[str] = mapped_column(
        ID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(8))  # redact | block | allow
    detectors: Mapped[list[Any]] = mapped_column(default=list)  # built-in detector names
    patterns: Mapped[list[Any]] = mapped_column(default=list)  # [{name, pattern}]
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    restore: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]
