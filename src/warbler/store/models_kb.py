"""Knowledge-base tables: knowledge bases, documents, their chunks, curated answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from warbler.store.models import ID, Base


class KnowledgeBase(Base):
    __tablename__ = "kb_bases"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # Who may read it besides tenant owners/admins: roles ("member", "agent", "visitor", ...)
    # and group conversations whose members may read it.
    read_roles: Mapped[list[Any]] = mapped_column(default=list)
    read_group_ids: Mapped[list[Any]] = mapped_column(default=list)
    # Bumped whenever its chunks or curated answers change, so every node can tell that its
    # in-memory search index of this KB is stale with one cheap read.
    content_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class KbDocument(Base):
    __tablename__ = "kb_documents"
    __table_args__ = (UniqueConstraint("kb_id", "source"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("kb_bases.id", ondelete="CASCADE"), index=True)
    # What identifies the document inside its KB: a relative path, a file name or a URL.
    # Ingesting the same source again replaces its chunks (or skips it if unchanged).
    source: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(500), default="")
    format: Mapped[str] = mapped_column(String(16))  # txt md html pdf docx csv xlsx url
    link: Mapped[str | None] = mapped_column(String(2000))
    # SHA-256 of the raw bytes that were (or are being) ingested.
    content_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    # The raw bytes waiting for the ingestion job (cleared once ingested).
    file_id: Mapped[str | None] = mapped_column(String(26))
    status: Mapped[str] = mapped_column(String(16))  # pending processing ready failed
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(default=0.0)  # 0..1 while processing
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    embedder: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class KbChunk(Base):
    __tablename__ = "kb_chunks"
    __table_args__ = (Index("ix_kb_chunks_kb", "kb_id", "embedder"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("kb_bases.id", ondelete="CASCADE"))
    document_id: Mapped[str] = mapped_column(
        ForeignKey("kb_documents.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # 0-based order within the document
    title_path: Mapped[str] = mapped_column(String(1000), default="")
    text: Mapped[str] = mapped_column(Text)
    # Pre-split search tokens (warbler.search.tokenize), space-joined, for BM25.
    tokens: Mapped[str] = mapped_column(Text)
    # float32 little-endian, L2-normalised; ``embedder`` names the model that made it.
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    embedder: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class CuratedAnswer(Base):
    __tablename__ = "kb_curated_answers"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("kb_bases.id", ondelete="CASCADE"), index=True)
    answer: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CuratedQuestion(Base):
    """One phrasing of a curated answer's question (an answer has several)."""

    __tablename__ = "kb_curated_questions"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("kb_bases.id", ondelete="CASCADE"), index=True)
    answer_id: Mapped[str] = mapped_column(
        ForeignKey("kb_curated_answers.id", ondelete="CASCADE"), index=True
    )
    question: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    embedder: Mapped[str] = mapped_column(String(100))
