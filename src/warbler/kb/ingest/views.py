"""What API clients see of a knowledge-base document (never where its bytes are kept)."""

from __future__ import annotations

from typing import Any

from warbler.store.models_kb import KbDocument


def document_view(doc: KbDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "kb_id": doc.kb_id,
        "source": doc.source,
        "title": doc.title,
        "format": doc.format,
        "link": doc.link,
        "content_hash": doc.content_hash or None,
        "size_bytes": doc.size_bytes,
        "status": doc.status,
        "progress": round(doc.progress, 3),
        "error": doc.error,
        "chunk_count": doc.chunk_count,
        "embedder": doc.embedder,
        "created_at": doc.created_at,
        "updated_at": doc.updated_at,
    }
