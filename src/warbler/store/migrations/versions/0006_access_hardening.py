"""access-control hardening (login throttling, lockout, password policy)

Login failure counters (``login_throttle``), the append-only guard of ``audit_log`` (triggers
refusing UPDATE and DELETE, and the ``audit_purge_grants`` table that ``purge_before`` uses)
and the audit log's listing indexes.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import warbler.store.models
from warbler.store.audit_guard import create_guard, drop_guard

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", warbler.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index(
        op.f("ix_login_throttle_locked_until"), "login_throttle", ["locked_until"], unique=False
    )
    op.create_index(
        op.f("ix_login_throttle_updated_at"), "login_throttle", ["updated_at"], unique=False
    )
    op.create_table(
        "audit_purge_grants",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("cutoff", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_audit_purge_grants_tenant_id"), "audit_purge_grants", ["tenant_id"], unique=False
    )
    op.create_index(
        "ix_audit_log_tenant_actor", "audit_log", ["tenant_id", "actor_id"], unique=False
    )
    op.create_index("ix_audit_log_tenant_seq", "audit_log", ["tenant_id", "id"], unique=False)
    op.create_index(
        "ix_audit_log_tenant_target",
        "audit_log",
        ["tenant_id", "target_type", "target_id"],
        unique=False,
    )
    create_guard(op.execute, op.get_bind().dialect.name)


def downgrade() -> None:
    drop_guard(op.execute, op.get_bind().dialect.name)
    op.drop_index("ix_audit_log_tenant_target", table_name="audit_log")
    op.drop_index("ix_audit_log_tenant_seq", table_name="audit_log")
    op.drop_index("ix_audit_log_tenant_actor", table_name="audit_log")
    op.drop_index(op.f("ix_audit_purge_grants_tenant_id"), table_name="audit_purge_grants")
    op.drop_table("audit_purge_grants")
    op.drop_index(op.f("ix_login_throttle_updated_at"), table_name="login_throttle")
    op.drop_index(op.f("ix_login_throttle_locked_until"), table_name="login_throttle")
    op.drop_table("login_throttle")
