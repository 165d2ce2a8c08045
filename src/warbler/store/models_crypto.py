"""Encryption-at-rest tables: each tenant's data keys, stored wrapped under the master key.

A tenant has keys for two purposes: ``data`` (AES-256-GCM for message bodies, event payloads,
files and secrets; one active version for new writes, older versions kept to decrypt) and
``search`` (the HMAC key of the blind search index). See ``warbler.security.encryption``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warbler.store.models import Base


class TenantKey(Base):
    __tablename__ = "tenant_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "purpose", "version"),)
    # The key id every ciphertext carries (8 characters of base32), unique across tenants.
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # data | search
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # active | retired (decrypts only)
    # base64url(nonce ‖ AES-256-GCM(master key, the 32 key bytes)), bound to tenant/purpose/id.
    wrapped: Mapped[str] = mapped_column(Text)
    # Fingerprint of the master key that wrapped it (what `warbler keys rotate-master` moves).
    master_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
