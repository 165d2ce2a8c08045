"""ai tools: HTTP tools and MCP servers

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import warbler.store.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_http_tools",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url_template", sa.String(length=2000), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("auth_header_name", sa.String(length=100), nullable=True),
        sa.Column("auth_header_value_sealed", sa.Text(), nullable=True),
        sa.Column("allowed_roles", sa.JSON(), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    with op.batch_alter_table("ai_http_tools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_http_tools_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "ai_mcp_servers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("command", sa.String(length=1000), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("env_sealed", sa.Text(), nullable=True),
        sa.Column("headers_sealed", sa.Text(), nullable=True),
        sa.Column("allowed_roles", sa.JSON(), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    with op.batch_alter_table("ai_mcp_servers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_mcp_servers_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_mcp_servers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_mcp_servers_tenant_id"))
    op.drop_table("ai_mcp_servers")
    with op.batch_alter_table("ai_http_tools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_http_tools_tenant_id"))
    op.drop_table("ai_http_tools")
