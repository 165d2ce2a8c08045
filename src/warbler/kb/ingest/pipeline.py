"""Ingest one document: read its bytes (or fetch its URL), parse, chunk, embed in batches,
and replace its chunks in one transaction.

Every step can be repeated: a run that crashed is run again from the start and ends in the
same state, and a run whose document changed meanwhile (a newer upload, a deletion) throws
its work away instead of overwriting the newer state.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.config import Settings
from warbler.files.store import FileStore
from warbler.ids import new_id
from warbler.kb.chunking import Chunk, chunk_document
from warbler.kb.embedders.base import Embedder, Vectors
from warbler.kb.ingest.blobs import blob_key, read_all
from warbler.kb.parsers import ParseError, parse, title_of
from warbler.kb.parsers.url import FetchError, fetch_url
from warbler.search.tokenize import tokens
from warbler.security.outbound import OutboundPolicy
from warbler.store.db import Database
from warbler.store.models_kb import KbChunk, KbDocument, KnowledgeBase

Progress = Callable[[float], None]
# Re-embeds what else a KB stores under the old model (curated questions): (tenant, kb) → rows.
# Registered on ``Ingestor.reindex_hooks``; run by the reindex job (reindex.py) after the chunks.
ReindexHook = Callable[[str, str], Awaitable[int]]
MAX_ERROR_CHARS = 2000
# How much of the progress bar each phase takes: reading+parsing, then embedding.
_PARSED, _EMBEDDED = 0.1, 0.95


class IngestFailed(Exception):
    """The document could not be ingested; ``retryable`` when trying again may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Outcome:
    # ingested: new chunks stored; skipped: unchanged (same bytes, same embedder);
    # superseded/deleted: the document changed meanwhile, this run's work was dropped.
    result: Literal["ingested", "skipped", "superseded", "deleted"]
    document_id: str
    chunks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def embedding_input(title: str, title_path: str, text: str) -> str:
    """What is embedded and keyword-indexed for a chunk: its text under its headings, so a
    passage that says "within 30 days" is found by a question about refunds."""
    context = " > ".join(part for part in (title, title_path) if part)
    return f"{context}\n{text}" if context else text


@dataclass(frozen=True, slots=True)
class Prepared:
    """A parsed document's chunks, what to embed for each, and their search tokens."""

    title: str
    chunks: list[Chunk]
    inputs: list[str]
    tokens: list[str]  # space-joined, per chunk


def prepare(data: bytes, fmt: str, fallback_title: str, size: int, overlap: int) -> Prepared:
    """Parse and chunk; raises ``ParseError``."""
    parsed = parse(data, fmt, fallback_title)
    chunks = chunk_document(parsed, size=size, overlap=overlap)
    inputs = [embedding_input(parsed.title, c.title_path, c.text) for c in chunks]
    return Prepared(parsed.title, chunks, inputs, [" ".join(tokens(text)) for text in inputs])


def vector_bytes(vector: Vectors) -> bytes:
    return np.asarray(vector, dtype=np.float32).astype("<f4").tobytes()


class Ingestor:
    def __init__(
        self,
        db: Database,
        blobs: FileStore,
        embedder: Embedder,
        outbound: OutboundPolicy,
        settings: Settings,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.embedder = embedder
        self.outbound = outbound
        self.chunk_chars = settings.kb_chunk_chars
        self.chunk_overlap = settings.kb_chunk_overlap
        self.batch = settings.kb_embed_batch
        self.max_bytes = settings.kb_max_document_bytes
        self.reindex_hooks: list[ReindexHook] = []

    # -- one document ----------------------------------------------------------------------

    async def run(
        self,
        tenant_id: str,
        document_id: str,
        file_id: str | None,
        *,
        final_attempt: bool = True,
        on_progress: Progress | None = None,
    ) -> Outcome:
        """Ingest the document's version ``file_id`` (None for a URL, fetched now).

        Raises ``IngestFailed`` after recording the error on the document: ``failed``, or
        ``pending`` with the error when the job will try again (not ``final_attempt``).
        """
        report = on_progress or (lambda _: None)
        async with self.db.write() as s:
            doc = await load_document(s, tenant_id, document_id)
            if doc is None:
                return Outcome("deleted", document_id)
            kb_id, source, fmt = doc.kb_id, doc.source, doc.format
            current_file = doc.file_id
            if fmt == "url" or current_file == file_id:
                doc.status, doc.progress, doc.error = "processing", 0.0, None
                doc.updated_at = utcnow()
                known_hash, known_embedder = doc.content_hash, doc.embedder
        if fmt != "url" and current_file != file_id:
            # A newer upload replaced this version, or this version is already ingested
            # (its job delivered twice): nothing to do but forget its bytes.
            await self._drop_blob(tenant_id, kb_id, file_id, keep=current_file)
            return Outcome("superseded", document_id)
        report(0.0)
        try:
            if fmt == "url":
                fetched = await self._fetch(source)
                data, fmt, fallback = fetched.data, fetched.format, fetched.title
                digest = hashlib.sha256(data).hexdigest()
                if digest == known_hash and known_embedder == self.embedder.name:
                    await self._finish_unchanged(tenant_id, document_id)
                    report(1.0)
                    return Outcome("skipped", document_id)
            else:
                data, fallback = await self._read(tenant_id, kb_id, file_id), title_of(source)
                digest = hashlib.sha256(data).hexdigest()
            try:
                # Parsing, chunking and tokenizing are CPU work: off the event loop.
                prepared = await asyncio.to_thread(
                    prepare, data, fmt, fallback, self.chunk_chars, self.chunk_overlap
                )
            except ParseError as exc:
                raise IngestFailed(exc.message, retryable=False) from None
            await self._progress(tenant_id, document_id, _PARSED, report)
            vectors = await self._embed(tenant_id, document_id, prepared.inputs, report)
        except IngestFailed as exc:
            await self._record_failure(tenant_id, document_id, file_id, exc, final_attempt)
            raise
        except Exception as exc:
            failure = IngestFailed(f"internal error: {type(exc).__name__}: {exc}", retryable=True)
            await self._record_failure(tenant_id, document_id, file_id, failure, final_attempt)
            raise
        outcome = await self._replace(
            tenant_id, document_id, file_id, prepared, vectors, digest=digest, size=len(data),
        )  # fmt: skip
        if outcome.result == "ingested":
            await self._drop_blob(tenant_id, kb_id, file_id)
            report(1.0)
        return outcome

    async def _fetch(self, url: str) -> Any:
        try:
            return await fetch_url(self.outbound, url, max_bytes=self.max_bytes)
        except FetchError as exc:
            raise IngestFailed(exc.message, retryable=exc.retryable) from None

    async def _read(self, tenant_id: str, kb_id: str, file_id: str | None) -> bytes:
        if file_id is None:
            raise IngestFailed("the document has no uploaded content", retryable=False)
        try:
            return await read_all(self.blobs, blob_key(tenant_id, kb_id, file_id))
        except FileNotFoundError:
            raise IngestFailed(
                "the uploaded bytes are missing: upload the document again", retryable=False
            ) from None

    async def _embed(
        self, tenant_id: str, document_id: str, inputs: list[str], report: Progress
    ) -> list[bytes]:
        out: list[bytes] = []
        for start in range(0, len(inputs), self.batch):
            batch = inputs[start : start + self.batch]
            try:
                vectors = await self.embedder.embed_passages(batch)
            except Exception as exc:  # a remote embedder fails in its own ways; all are transient
                raise IngestFailed(f"embedding failed: {exc}", retryable=True) from None
            if len(vectors) != len(batch):
                raise IngestFailed(
                    "the embedder returned a wrong number of vectors", retryable=True
                )
            out.extend(vector_bytes(v) for v in vectors)
            done = _PARSED + (_EMBEDDED - _PARSED) * len(out) / len(inputs)
            await self._progress(tenant_id, document_id, done, report)
        return out

    async def _progress(
        self, tenant_id: str, document_id: str, value: float, report: Progress
    ) -> None:
        report(value)
        async with self.db.write() as s:
            await s.execute(
                update(KbDocument)
                .where(
                    KbDocument.id == document_id,
                    KbDocument.tenant_id == tenant_id,
                    KbDocument.status == "processing",
                )
                .values(progress=value, updated_at=utcnow())
            )

    async def _replace(
        self,
        tenant_id: str,
        document_id: str,
        file_id: str | None,
        prepared: Prepared,
        vectors: list[bytes],
        *,
        digest: str,
        size: int,
    ) -> Outcome:
        """Swap the document's chunks for the new ones and bump its KB's content version,
        all in one transaction (readers see the old chunks or the new, never a mix)."""
        now, embedder = utcnow(), self.embedder.name
        async with self.db.write() as s:
            doc = await load_document(s, tenant_id, document_id, lock=True)
            if doc is None:
                return Outcome("deleted", document_id)
            if doc.format != "url" and doc.file_id != file_id:
                return Outcome("superseded", document_id)
            await s.execute(delete(KbChunk).where(KbChunk.document_id == doc.id))
            if prepared.chunks:
                await s.execute(
                    insert(KbChunk),
                    [
                        {
                            "id": new_id(),
                            "tenant_id": tenant_id,
                            "kb_id": doc.kb_id,
                            "document_id": doc.id,
                            "position": chunk.position,
                            "title_path": chunk.title_path[:1000],
                            "text": chunk.text,
                            "tokens": token_text,
                            "embedding": vector,
                            "embedder": embedder,
                            "created_at": now,
                        }
                        for chunk, token_text, vector in zip(
                            prepared.chunks, prepared.tokens, vectors, strict=True
                        )
                    ],
                )
            doc.title = prepared.title[:500]
            doc.status, doc.progress, doc.error = "ready", 1.0, None
            doc.chunk_count, doc.embedder = len(prepared.chunks), embedder
            doc.content_hash, doc.size_bytes = digest, size
            doc.file_id, doc.updated_at = None, now
            await bump_version(s, doc.kb_id)
        return Outcome("ingested", document_id, len(prepared.chunks))

    async def _finish_unchanged(self, tenant_id: str, document_id: str) -> None:
        async with self.db.write() as s:
            await s.execute(
                update(KbDocument)
                .where(KbDocument.id == document_id, KbDocument.tenant_id == tenant_id)
                .values(status="ready", progress=1.0, error=None, updated_at=utcnow())
            )

    async def _record_failure(
        self,
        tenant_id: str,
        document_id: str,
        file_id: str | None,
        failure: IngestFailed,
        final_attempt: bool,
    ) -> None:
        will_retry = failure.retryable and not final_attempt
        conditions = [KbDocument.id == document_id, KbDocument.tenant_id == tenant_id]
        if file_id is not None:
            conditions.append(KbDocument.file_id == file_id)  # not a newer upload's row
        async with self.db.write() as s:
            await s.execute(
                update(KbDocument)
                .where(*conditions)
                .values(
                    status="pending" if will_retry else "failed",
                    progress=0.0,
                    error=(f"{failure.message} (will retry)" if will_retry else failure.message)[
                        :MAX_ERROR_CHARS
                    ],
                    updated_at=utcnow(),
                )
            )

    async def _drop_blob(
        self, tenant_id: str, kb_id: str, file_id: str | None, *, keep: str | None = None
    ) -> None:
        if file_id is not None and file_id != keep:
            await self.blobs.delete(blob_key(tenant_id, kb_id, file_id))


async def load_document(
    s: AsyncSession, tenant_id: str, document_id: str, *, lock: bool = False
) -> KbDocument | None:
    query = select(KbDocument).where(
        KbDocument.id == document_id, KbDocument.tenant_id == tenant_id
    )
    if lock:
        query = query.with_for_update()
    found: KbDocument | None = await s.scalar(query)
    return found


async def bump_version(s: AsyncSession, kb_id: str) -> None:
    """Tell every node's retrieval cache that the KB's content changed (same transaction)."""
    await s.execute(
        update(KnowledgeBase)
        .where(KnowledgeBase.id == kb_id)
        .values(content_version=KnowledgeBase.content_version + 1, updated_at=utcnow())
    )
