"""Tool tables: HTTP tools and MCP servers defined by tenant admins."""

from __future__ import annotations

from warbler.store.models import Base

__all__ = ["Base"]
