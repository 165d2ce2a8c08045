"""encryption at rest: per-tenant data keys

The ``tenant_keys`` table (each tenant's data and search keys, wrapped under the master key).
Encrypted columns keep their types (an encrypted JSON value is a JSON string), so existing
rows need no rewrite to be read; ``warbler keys reencrypt`` encrypts them.

The search index is emptied: it held words, and queries now look for keyed hashes of words
(``security/encryption/blind_index.py``). ``warbler keys reencrypt`` rebuilds the entries
of messages written before this revision; new messages are indexed as they are sent.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import warbler.store.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wrapped", sa.Text(), nullable=False),
        sa.Column("master_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", warbler.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "purpose", "version"),
    )
    op.create_index(op.f("ix_tenant_keys_tenant_id"), "tenant_keys", ["tenant_id"], unique=False)
    op.execute("DELETE FROM message_search")
    if op.get_bind().dialect.name == "sqlite":
        # Merge the FTS5 segments so the deleted words leave the index's pages too.
        op.execute("INSERT INTO message_search(message_search) VALUES ('optimize')")


def downgrade() -> None:
    op.drop_index(op.f("ix_tenant_keys_tenant_id"), table_name="tenant_keys")
    op.drop_table("tenant_keys")
