"""Tool tables: HTTP tools and MCP servers defined by tenant admins.

Secrets (an HTTP tool's auth header value, an MCP server's environment and headers) are
stored sealed (``security/crypto.py``) under a context naming the row, and never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warbler.store.models import ID, Base


class HttpTool(Base):
    __tablename__ = "ai_http_tools"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))  # ^[a-z][a-z0-9_]{0,39}$, what the model calls
    description: Mapped[str] = mapped_column(Text, default="")
    method: Mapped[str] = mapped_column(String(8))  # GET POST PUT PATCH DELETE
    # May hold {arg} placeholders in its path and query, filled URL-encoded from arguments.
    url_template: Mapped[str] = mapped_column(String(2000))
    parameters: Mapped[dict[str, Any]]  # JSON Schema of the arguments (type: object)
    auth_header_name: Mapped[str | None] = mapped_column(String(100))
    # Sealed with context "http_tool:<id>:auth".
    auth_header_value_sealed: Mapped[str | None] = mapped_column(Text)
    allowed_roles: Mapped[list[Any]] = mapped_column(default=list)
    timeout_seconds: Mapped[float] = mapped_column(default=10.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class McpServer(Base):
    __tablename__ = "ai_mcp_servers"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))  # ^[a-z][a-z0-9_]{0,39}$
    description: Mapped[str] = mapped_column(Text, default="")
    transport: Mapped[str] = mapped_column(String(8))  # stdio | http (streamable HTTP)
    url: Mapped[str | None] = mapped_column(String(2000))  # http
    command: Mapped[str | None] = mapped_column(String(1000))  # stdio
    args: Mapped[list[Any]] = mapped_column(default=list)  # stdio
    # Sealed JSON objects, contexts "mcp_server:<id>:env" and "mcp_server:<id>:headers".
    env_sealed: Mapped[str | None] = mapped_column(Text)
    headers_sealed: Mapped[str | None] = mapped_column(Text)
    allowed_roles: Mapped[list[Any]] = mapped_column(default=list)
    timeout_seconds: Mapped[float] = mapped_column(default=20.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
