"""Request and response bodies of the knowledge-base API (``/api/v1/kb``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from warbler.api.schemas import Request
from warbler.im.principal import ROLES

_ROLES_HELP = (
    f"Roles whose users may read the KB besides owners and admins (any of: {', '.join(ROLES)})."
)
_GROUPS_HELP = "Group conversations whose members may read the KB."


class KnowledgeBaseIn(Request):
    name: str = Field(max_length=100, examples=["Help center 帮助中心"])
    description: str = Field("", max_length=2000)
    read_roles: list[str] | None = Field(
        None, max_length=len(ROLES), description=_ROLES_HELP + " Default: agent, member."
    )
    read_group_ids: list[str] = Field(
        default_factory=list, max_length=100, description=_GROUPS_HELP
    )


class KnowledgeBaseUpdateIn(Request):
    name: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=2000)
    read_roles: list[str] | None = Field(None, max_length=len(ROLES), description=_ROLES_HELP)
    read_group_ids: list[str] | None = Field(None, max_length=100, description=_GROUPS_HELP)


class KnowledgeBaseOut(BaseModel):
    id: str
    name: str
    description: str
    read_roles: list[str]
    read_group_ids: list[str]
    content_version: int = Field(description="Bumped whenever the KB's content changes.")
    document_count: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime


class DocumentOut(BaseModel):
    id: str
    kb_id: str
    source: str = Field(description="The file name (or relative path) or URL; unique in the KB.")
    title: str
    format: str = Field(description="txt md html pdf docx csv xlsx, or url")
    link: str | None
    content_hash: str | None = Field(description="SHA-256 of the ingested (or queued) bytes.")
    size_bytes: int
    status: Literal["pending", "processing", "ready", "failed"]
    progress: float = Field(description="0 to 1 while processing; 1 when ready.")
    error: str | None = Field(description="Why the last ingestion failed (or will be retried).")
    chunk_count: int
    embedder: str | None = Field(description="The embedding model of the stored chunks.")
    created_at: datetime
    updated_at: datetime


class SubmittedOut(BaseModel):
    outcome: Literal["queued", "skipped"] = Field(
        description="queued: the job will ingest it; skipped: the same bytes are already "
        "ingested with the current embedder."
    )
    document: DocumentOut


class SubmittedListOut(BaseModel):
    documents: list[SubmittedOut]


class UrlIn(Request):
    url: str = Field(max_length=2000, examples=["https://example.com/help/returns.html"])


class ReindexIn(Request):
    force: bool = Field(False, description="Re-embed every document, not only stale ones.")


class ReindexOut(BaseModel):
    job_id: str
    status: str
