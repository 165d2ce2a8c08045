"""Failed-login counters for throttling and lockout (``warbler/security/throttle.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from warbler.store.models import Base


class LoginCounter(Base):
    """One counter per account (tenant slug + username) or client IP, by a SHA-256 of that
    key: an account or tenant that does not exist is counted like one that does (a lockout
    must not tell them apart), so a row cannot point at a tenant. No name or address is
    stored in clear; rows are pruned once their window and lock have passed."""

    __tablename__ = "login_throttle"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # account | ip
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(index=True)
