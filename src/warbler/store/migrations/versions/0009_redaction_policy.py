"""PII redaction policies

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import warbler.store.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redaction_policies",
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("detectors", sa.JSON(), nullable=False),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("restore", sa.Boolean(), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("redaction_policies")
