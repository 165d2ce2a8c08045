"""knowledge base

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import warbler.store.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_bases",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("read_roles", sa.JSON(), nullable=False),
        sa.Column("read_group_ids", sa.JSON(), nullable=False),
        sa.Column("content_version", sa.Integer(), nullable=False),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name"),
    )
    with op.batch_alter_table("kb_bases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_bases_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "kb_curated_answers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("kb_id", sa.String(length=26), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("last_hit_at", warbler.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["kb_id"], ["kb_bases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kb_curated_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_curated_answers_kb_id"), ["kb_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kb_curated_answers_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "kb_documents",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("kb_id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=26), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(length=100), nullable=True),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["kb_id"], ["kb_bases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kb_id", "source"),
    )
    with op.batch_alter_table("kb_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_documents_kb_id"), ["kb_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kb_documents_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("kb_id", sa.String(length=26), nullable=False),
        sa.Column("document_id", sa.String(length=26), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title_path", sa.String(length=1000), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedder", sa.String(length=100), nullable=False),
        sa.Column("created_at", warbler.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["kb_documents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["kb_id"], ["kb_bases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kb_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kb_chunks_document_id"), ["document_id"], unique=False)
        batch_op.create_index("ix_kb_chunks_kb", ["kb_id", "embedder"], unique=False)
        batch_op.create_index(batch_op.f("ix_kb_chunks_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "kb_curated_questions",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("kb_id", sa.String(length=26), nullable=False),
        sa.Column("answer_id", sa.String(length=26), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedder", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["answer_id"], ["kb_curated_answers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["kb_id"], ["kb_bases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kb_curated_questions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kb_curated_questions_answer_id"), ["answer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_kb_curated_questions_kb_id"), ["kb_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_kb_curated_questions_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("kb_curated_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_curated_questions_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_kb_curated_questions_kb_id"))
        batch_op.drop_index(batch_op.f("ix_kb_curated_questions_answer_id"))

    op.drop_table("kb_curated_questions")
    with op.batch_alter_table("kb_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_chunks_tenant_id"))
        batch_op.drop_index("ix_kb_chunks_kb")
        batch_op.drop_index(batch_op.f("ix_kb_chunks_document_id"))

    op.drop_table("kb_chunks")
    with op.batch_alter_table("kb_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_documents_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_kb_documents_kb_id"))

    op.drop_table("kb_documents")
    with op.batch_alter_table("kb_curated_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_curated_answers_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_kb_curated_answers_kb_id"))

    op.drop_table("kb_curated_answers")
    with op.batch_alter_table("kb_bases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kb_bases_tenant_id"))

    op.drop_table("kb_bases")
