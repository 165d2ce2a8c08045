"""Re-embed a knowledge base after a change of embedding model (the ``kb.reindex`` job).

Only the stored chunk texts are embedded again, in place (same chunk ids); no document is
fetched or parsed again. A document re-ingested meanwhile is left alone: its chunks are new.
"""

from __future__ import annotations

from sqlalchemy import select, update

from warbler.clock import utcnow
from warbler.kb.ingest.pipeline import (
    Ingestor,
    Progress,
    bump_version,
    embedding_input,
    load_document,
    vector_bytes,
)
from warbler.store.models_kb import KbChunk, KbDocument


async def reindex_kb(
    ingestor: Ingestor,
    tenant_id: str,
    kb_id: str,
    *,
    force: bool = False,
    on_progress: Progress | None = None,
) -> dict[str, int]:
    """Re-embed the stored chunks of every ready document whose chunks were embedded by
    another model (every document with ``force``); no document is parsed again."""
    name = ingestor.embedder.name
    async with ingestor.db.read() as s:
        query = select(KbDocument.id).where(
            KbDocument.tenant_id == tenant_id,
            KbDocument.kb_id == kb_id,
            KbDocument.status == "ready",
        )
        if not force:
            stale = select(KbChunk.document_id).where(
                KbChunk.kb_id == kb_id, KbChunk.embedder != name
            )
            query = query.where(
                (KbDocument.embedder.is_(None))
                | (KbDocument.embedder != name)
                | KbDocument.id.in_(stale)
            )
        doc_ids = list((await s.scalars(query.order_by(KbDocument.id))).all())
    documents = chunks = 0
    for index, doc_id in enumerate(doc_ids):
        done = await _reembed(ingestor, tenant_id, doc_id)
        documents += done > 0
        chunks += done
        if on_progress is not None:
            on_progress((index + 1) / len(doc_ids))
    extra = 0
    for hook in ingestor.reindex_hooks:
        extra += await hook(tenant_id, kb_id)
    return {"documents": documents, "chunks": chunks, "other": extra}


async def _reembed(ingestor: Ingestor, tenant_id: str, document_id: str) -> int:
    async with ingestor.db.read() as s:
        doc = await load_document(s, tenant_id, document_id)
        if doc is None:
            return 0
        rows = (
            await s.execute(
                select(KbChunk.id, KbChunk.title_path, KbChunk.text)
                .where(KbChunk.document_id == document_id)
                .order_by(KbChunk.position)
            )
        ).all()
        title = doc.title
    inputs = [embedding_input(title, path, text) for _, path, text in rows]
    vectors: list[bytes] = []
    for start in range(0, len(inputs), ingestor.batch):
        batch = await ingestor.embedder.embed_passages(inputs[start : start + ingestor.batch])
        vectors.extend(vector_bytes(v) for v in batch)
    name = ingestor.embedder.name
    async with ingestor.db.write() as s:
        doc = await load_document(s, tenant_id, document_id, lock=True)
        current = set(
            (await s.scalars(select(KbChunk.id).where(KbChunk.document_id == document_id))).all()
        )
        if doc is None or current != {row[0] for row in rows}:
            return 0  # re-ingested or deleted meanwhile: its chunks are already current
        if rows:
            await s.execute(
                update(KbChunk),
                [
                    {"id": chunk_id, "embedding": vector, "embedder": name}
                    for (chunk_id, _, _), vector in zip(rows, vectors, strict=True)
                ],
            )
        doc.embedder, doc.updated_at = name, utcnow()
        await bump_version(s, doc.kb_id)
    return len(rows)
