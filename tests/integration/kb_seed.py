"""Knowledge bases for retrieval tests, written straight into the tables (no ingestion job):
one chunk per "## " section of a Markdown text, embedded by the node's real embedder.

Vectors are cached per process by text, so a test module pays for each passage once even
though every test (and both stores) gets a fresh database.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.search.tokenize import tokens
from warbler.services import Services
from warbler.store.models_kb import KbChunk, KbDocument, KnowledgeBase

DEMO_DOCS = Path(__file__).parents[2] / "examples" / "kb" / "docs"
_VECTORS: dict[tuple[str, str], np.ndarray] = {}


def sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """(title, [(title path, text)]) of a Markdown page split at its "## " headings."""
    title = markdown.splitlines()[0].lstrip("# ").strip()
    out = []
    for part in markdown.split("\n## ")[1:]:
        heading, _, body = part.partition("\n")
        out.append((f"{title} > {heading.strip()}", body.strip()))
    return title, out


async def embed_passages(services: Services, texts: list[str]) -> np.ndarray:
    name = services.embedder.name
    todo = [t for t in dict.fromkeys(texts) if (name, t) not in _VECTORS]
    if todo:
        for text, vector in zip(todo, await services.embedder.embed_passages(todo), strict=True):
            _VECTORS[(name, text)] = vector
    return np.vstack([_VECTORS[(name, t)] for t in texts])


async def create_kb(
    services: Services, tenant_id: str, name: str = "help", *, read_roles: list[str] | None = None
) -> str:
    now = utcnow()
    async with services.db.write() as s:
        kb = KnowledgeBase(
            id=new_id(),
            tenant_id=tenant_id,
            name=name,
            description="",
            read_roles=read_roles if read_roles is not None else ["member", "agent", "visitor"],
            read_group_ids=[],
            content_version=1,
            created_at=now,
            updated_at=now,
        )
        s.add(kb)
    return kb.id


async def add_document(
    services: Services, tenant_id: str, kb_id: str, source: str, markdown: str,
    link: str | None = None,
) -> str:  # fmt: skip
    """One document and its chunks; bumps the KB's content version like ingestion does."""
    title, parts = sections(markdown)
    passages = [f"{path}\n{text}" for path, text in parts]
    vectors = await embed_passages(services, passages)
    now = utcnow()
    doc_id = new_id()
    async with services.db.write() as s:
        s.add(
            KbDocument(
                id=doc_id,
                tenant_id=tenant_id,
                kb_id=kb_id,
                source=source,
                title=title,
                format="md",
                link=link,
                content_hash="0" * 64,
                size_bytes=len(markdown),
                status="ready",
                progress=1.0,
                chunk_count=len(parts),
                embedder=services.embedder.name,
                created_at=now,
                updated_at=now,
            )
        )
        await s.flush()
        for position, ((path, text), passage, vector) in enumerate(
            zip(parts, passages, vectors, strict=True)
        ):
            s.add(
                KbChunk(
                    id=new_id(),
                    tenant_id=tenant_id,
                    kb_id=kb_id,
                    document_id=doc_id,
                    position=position,
                    title_path=path,
                    text=text,
                    tokens=" ".join(tokens(passage)),
                    embedding=np.asarray(vector, dtype="<f4").tobytes(),
                    embedder=services.embedder.name,
                    created_at=now,
                )
            )
        kb = await s.scalar(select(KnowledgeBase).where(KnowledgeBase.id == kb_id))
        assert kb is not None
        kb.content_version += 1
    return doc_id


async def demo_kb(
    services: Services, tenant_id: str, *names: str, read_roles: list[str] | None = None
) -> tuple[str, dict[str, str]]:
    """A KB with the demo help-centre pages (all, or those named); (kb id, {source: doc id})."""
    kb_id = await create_kb(services, tenant_id, read_roles=read_roles)
    paths = [DEMO_DOCS / n for n in names] if names else sorted(DEMO_DOCS.glob("*.md"))
    docs = {}
    for path in paths:
        docs[path.name] = await add_document(
            services, tenant_id, kb_id, path.name, path.read_text()
        )
    return kb_id, docs
