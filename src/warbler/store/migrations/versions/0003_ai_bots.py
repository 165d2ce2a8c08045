"""ai bots

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import warbler.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_providers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=False),
        sa.Column("api_key_sealed", sa.Text(), nullable=True),
        sa.Column("api_key_last4", sa.String(length=4), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("extra_body", sa.JSON(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("price_prompt", sa.Double(), nullable=False),
        sa.Column("price_completion", sa.Double(), nullable=False),
        sa.Column("timeout_seconds", sa.Double(), nullable=True),
        sa.Column("idle_timeout_seconds", sa.Double(), nullable=True),
        sa.Column("max_retries", sa.Integer(), nullable=True),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    with op.batch_alter_table("ai_providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_providers_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "ai_tenant_quotas",
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("messages_per_minute", sa.Integer(), nullable=True),
        sa.Column("tokens_per_month", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.create_table(
        "ai_usage",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("bot_id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=True),
        sa.Column("conversation_id", sa.String(length=26), nullable=True),
        sa.Column("trigger_message_id", sa.String(length=26), nullable=True),
        sa.Column("reply_message_id", sa.String(length=26), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Double(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ai_usage", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ai_usage_bot_time",
            ["tenant_id", "bot_id", "created_at", "prompt_tokens", "completion_tokens"],
            unique=False,
        )
        batch_op.create_index(
            "ix_ai_usage_tenant_time",
            ["tenant_id", "created_at", "prompt_tokens", "completion_tokens"],
            unique=False,
        )

    op.create_table(
        "ai_bots",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("avatar_url", sa.String(length=500), nullable=True),
        sa.Column("persona", sa.Text(), nullable=False),
        sa.Column("presets", sa.JSON(), nullable=False),
        sa.Column("provider_ids", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("temperature", sa.Double(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("context_tokens", sa.Integer(), nullable=False),
        sa.Column("kb_ids", sa.JSON(), nullable=False),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("dm_policy", sa.String(length=16), nullable=False),
        sa.Column("group_policy", sa.String(length=16), nullable=False),
        sa.Column("quotas", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
    )
    with op.batch_alter_table("ai_bots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_bots_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "ai_conversation_state",
        sa.Column("conversation_id", sa.String(length=26), nullable=False),
        sa.Column("bot_id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("preset", sa.String(length=64), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("summary_upto_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["ai_bots.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "bot_id"),
    )
    with op.batch_alter_table("ai_conversation_state", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_conversation_state_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_conversation_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_conversation_state_tenant_id"))

    op.drop_table("ai_conversation_state")
    with op.batch_alter_table("ai_bots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_bots_tenant_id"))

    op.drop_table("ai_bots")
    with op.batch_alter_table("ai_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_ai_usage_tenant_time")
        batch_op.drop_index("ix_ai_usage_bot_time")

    op.drop_table("ai_usage")
    op.drop_table("ai_tenant_quotas")
    with op.batch_alter_table("ai_providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_providers_tenant_id"))

    op.drop_table("ai_providers")
