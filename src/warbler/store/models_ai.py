"""AI tables: bots, provider configurations, reply usage, conversation memory."""

from __future__ import annotations

from warbler.store.models import Base

__all__ = ["Base"]
