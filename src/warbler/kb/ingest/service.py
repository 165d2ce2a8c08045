"""Documents of a knowledge base: submit files or URLs for ingestion, see their status,
retry, delete, and re-embed a KB. The work itself runs as ``kb.ingest`` jobs (pipeline.py).

Submitting is idempotent on (KB, source): the same bytes again are ``skipped`` when already
ingested with the current embedder, and answered with the queued document when already
waiting; different bytes replace the document's chunks once the new version is ingested.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.config import Settings
from warbler.errors import Conflict, InvalidRequest, NotFound, TooLarge, UnsupportedType
from warbler.files.names import clean_filename
from warbler.files.store import FileStore
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.jobs.queue import JobQueue, job_view
from warbler.kb.access import load_readable
from warbler.kb.bases import MANAGE_SCOPE, load_managed
from warbler.kb.ingest.blobs import blob_key, one_chunk
from warbler.kb.ingest.jobs import INGEST_KIND, MAX_ATTEMPTS, REINDEX_KIND
from warbler.kb.ingest.pipeline import Ingestor, Outcome, Progress, bump_version
from warbler.kb.ingest.views import document_view
from warbler.kb.parsers import FORMATS, format_for, title_of
from warbler.security.outbound import OutboundPolicy
from warbler.store.db import Database
from warbler.store.models import Job
from warbler.store.models_kb import KbDocument

MAX_SOURCE_CHARS = 1000
STATUSES = ("pending", "processing", "ready", "failed")
_SEPARATORS = re.compile(r"[/\\]+")


@dataclass(frozen=True, slots=True)
class Submitted:
    outcome: Literal["queued", "skipped"]
    document: dict[str, Any]
    file_id: str | None  # the version to ingest (None when skipped, or for a URL)

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "document": self.document}


def clean_source(name: str) -> str:
    """A relative path of safe segments ("guide/退货.md"): no "..", no leading "/"."""
    name = unicodedata.normalize("NFC", name)
    parts = [clean_filename(p) for p in _SEPARATORS.split(name) if p not in ("", ".", "..")]
    source = "/".join(p for p in parts if p)
    if not source:
        raise InvalidRequest("the document needs a file name", details={"field": "name"})
    if len(source) > MAX_SOURCE_CHARS:
        raise InvalidRequest(
            f"the document name is longer than {MAX_SOURCE_CHARS} characters",
            details={"field": "name"},
        )
    return source


class KbIngestService:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        blobs: FileStore,
        ingestor: Ingestor,
        outbound: OutboundPolicy,
        settings: Settings,
    ) -> None:
        self.db = db
        self.queue = queue
        self.blobs = blobs
        self.ingestor = ingestor
        self.outbound = outbound
        self.max_bytes = settings.kb_max_document_bytes

    @property
    def embedder_name(self) -> str:
        return self.ingestor.embedder.name

    # -- submit ------------------------------------------------------------------------------

    async def submit_file(
        self, principal: Principal, kb_id: str, name: str, data: bytes, *, enqueue: bool = True
    ) -> Submitted:
        """Store an uploaded document and queue its ingestion (``enqueue=False``: the caller
        runs ``ingest_now`` itself, as the CLI does)."""
        principal.require_admin(MANAGE_SCOPE)
        source, fmt = self.check_file(name, data)
        digest = hashlib.sha256(data).hexdigest()
        async with self.db.read() as s:
            kb = await load_managed(s, principal, kb_id)
            existing = await _by_source(s, kb.id, source)
            if existing is not None and (found := self._unchanged(existing, digest)):
                return found
        file_id = new_id()
        key = blob_key(principal.tenant_id, kb_id, file_id)
        await self.blobs.put(key, one_chunk(data))
        replaced: str | None = None
        try:
            async with self.db.write_then() as (s, after):
                kb = await load_managed(s, principal, kb_id)
                doc = await _by_source(s, kb.id, source)
                if doc is not None and (found := self._unchanged(doc, digest)):
                    await self.blobs.delete(key)
                    return found
                now = utcnow()
                if doc is None:
                    doc = KbDocument(
                        id=new_id(), tenant_id=principal.tenant_id, kb_id=kb.id, source=source,
                        title=title_of(source), format=fmt, link=None, chunk_count=0,
                        created_at=now,
                    )  # fmt: skip
                    s.add(doc)
                replaced = doc.file_id
                doc.format, doc.content_hash, doc.size_bytes = fmt, digest, len(data)
                doc.file_id, doc.status, doc.progress, doc.error = file_id, "pending", 0.0, None
                doc.updated_at = now
                await s.flush()
                if enqueue:
                    await self._enqueue(s, after, doc, file_id)
        except IntegrityError:
            await self.blobs.delete(key)
            raise Conflict(
                f"{source} is being uploaded by another request", details={"source": source}
            ) from None
        except BaseException:
            await self.blobs.delete(key)
            raise
        if replaced is not None:
            # An older version that was still waiting: its job will find itself superseded.
            await self.blobs.delete(blob_key(principal.tenant_id, kb_id, replaced))
        return Submitted("queued", document_view(doc), file_id)

    def check_file(self, name: str, data: bytes) -> tuple[str, str]:
        """(source, format) of a file that may be submitted; raises if it may not (empty,
        too large, a type that cannot be ingested). Lets a batch be refused as a whole."""
        source = clean_source(name)
        if not data:
            raise InvalidRequest(f"{source} is empty", details={"source": source})
        if len(data) > self.max_bytes:
            raise TooLarge(
                f"{source} is larger than {self.max_bytes} bytes",
                details={"source": source, "limit": self.max_bytes},
            )
        fmt = format_for(source, data[:8])
        if fmt is None:
            raise UnsupportedType(
                f"cannot ingest {source}: supported types are {', '.join(FORMATS)}",
                details={"source": source, "supported": list(FORMATS)},
            )
        return source, fmt

    def _unchanged(self, doc: KbDocument, digest: str) -> Submitted | None:
        if doc.content_hash != digest:
            return None
        if doc.status == "ready" and doc.embedder == self.embedder_name:
            return Submitted("skipped", document_view(doc), None)
        if doc.status in ("pending", "processing") and doc.file_id is not None:
            return Submitted("queued", document_view(doc), doc.file_id)  # a repeated request
        return None

    async def submit_url(self, principal: Principal, kb_id: str, url: str) -> Submitted:
        """Queue a web page or file for ingestion (fetched by the job, through the outbound
        policy); submitting a known URL again fetches it again (unchanged: skipped)."""
        principal.require_admin(MANAGE_SCOPE)
        url = url.strip()
        await self.outbound.check(url)  # refuse a forbidden host now, not in the job
        try:
            async with self.db.write_then() as (s, after):
                kb = await load_managed(s, principal, kb_id)
                doc = await _by_source(s, kb.id, url)
                if doc is not None and doc.status in ("pending", "processing"):
                    return Submitted("queued", document_view(doc), None)
                now = utcnow()
                if doc is None:
                    doc = KbDocument(
                        id=new_id(), tenant_id=principal.tenant_id, kb_id=kb.id, source=url,
                        title="", format="url", link=url, content_hash="", size_bytes=0,
                        chunk_count=0, file_id=None, created_at=now,
                    )  # fmt: skip
                    s.add(doc)
                doc.status, doc.progress, doc.error, doc.updated_at = "pending", 0.0, None, now
                await s.flush()
                await self._enqueue(s, after, doc, None)
        except IntegrityError:
            raise Conflict("the URL is being submitted by another request") from None
        return Submitted("queued", document_view(doc), None)

    async def _enqueue(
        self,
        s: AsyncSession,
        after: list[Any],
        doc: KbDocument,
        file_id: str | None,
        *,
        again: bool = False,
    ) -> Job:
        # One job per version: a repeated submit of the same version finds it by its key.
        # A URL (fetched anew each time) and a retry (``again``) get a job of their own.
        key = f"{INGEST_KIND}:{doc.id}:{file_id or 'url'}"
        if again or file_id is None:
            key += f":{new_id()}"
        return await self.queue.enqueue_in(
            s, INGEST_KIND, {"document_id": doc.id, "file_id": file_id},
            tenant_id=doc.tenant_id, ref=doc.id, dedupe_key=key, max_attempts=MAX_ATTEMPTS,
            after=after,
        )  # fmt: skip

    async def ingest_now(
        self,
        principal: Principal,
        submitted: Submitted,
        on_progress: Progress | None = None,
    ) -> Outcome:
        """Run the ingestion of a document submitted with ``enqueue=False`` in this process."""
        principal.require_admin(MANAGE_SCOPE)
        return await self.ingestor.run(
            principal.tenant_id, submitted.document["id"], submitted.file_id,
            on_progress=on_progress,
        )  # fmt: skip

    # -- read ------------------------------------------------------------------------------

    async def list_documents(
        self,
        principal: Principal,
        kb_id: str,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The KB's documents by source, for anyone who may read the KB."""
        if status is not None and status not in STATUSES:
            raise InvalidRequest(
                f"status must be one of {', '.join(STATUSES)}", details={"field": "status"}
            )
        async with self.db.read() as s:
            kb = await load_readable(s, principal, kb_id)
            query = select(KbDocument).where(
                KbDocument.tenant_id == principal.tenant_id, KbDocument.kb_id == kb.id
            )
            if status is not None:
                query = query.where(KbDocument.status == status)
            query = query.order_by(KbDocument.source).limit(limit).offset(offset)
            docs = (await s.scalars(query)).all()
        return [document_view(d) for d in docs]

    async def get_document(self, principal: Principal, kb_id: str, doc_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            kb = await load_readable(s, principal, kb_id)
            doc = await _in_kb(s, kb.id, doc_id)
        return document_view(doc)

    # -- change ----------------------------------------------------------------------------

    async def retry(self, principal: Principal, kb_id: str, doc_id: str) -> dict[str, Any]:
        """Ingest a failed (or stuck) document again now; a URL document is fetched again."""
        async with self.db.write_then() as (s, after):
            kb = await load_managed(s, principal, kb_id)
            doc = await _in_kb(s, kb.id, doc_id)
            if doc.status == "ready" and doc.format != "url":
                raise Conflict(
                    "the document is already ingested: upload it again to replace it",
                    details={"document_id": doc_id},
                )
            live = (
                await s.scalars(
                    select(Job).where(
                        Job.tenant_id == principal.tenant_id,
                        Job.ref == doc.id,
                        Job.kind == INGEST_KIND,
                        Job.status.in_(("pending", "running")),
                    )
                )
            ).all()
            if any(job.status == "running" for job in live):
                raise Conflict(
                    "the document is being ingested now", details={"document_id": doc_id}
                )
            doc.status, doc.progress, doc.error, doc.updated_at = "pending", 0.0, None, utcnow()
            if not live:
                await self._enqueue(s, after, doc, doc.file_id, again=True)
            view = document_view(doc)
        for job in live:  # waiting out a backoff: run it now instead
            await self.queue.retry(principal.tenant_id, job.id, kind=INGEST_KIND)
        return view

    async def delete_document(self, principal: Principal, kb_id: str, doc_id: str) -> None:
        async with self.db.write() as s:
            kb = await load_managed(s, principal, kb_id)
            doc = await _in_kb(s, kb.id, doc_id)
            file_id = doc.file_id
            await self.queue.delete_for_ref(s, principal.tenant_id, doc.id)
            # Its chunks go with it (ON DELETE CASCADE).
            await s.execute(delete(KbDocument).where(KbDocument.id == doc.id))
            await bump_version(s, kb.id)
        if file_id is not None:
            await self.blobs.delete(blob_key(principal.tenant_id, kb_id, file_id))

    async def reindex(
        self, principal: Principal, kb_id: str, *, force: bool = False
    ) -> dict[str, Any]:
        """Queue re-embedding of the KB's chunks made by another model (all with ``force``)."""
        async with self.db.write_then() as (s, after):
            kb = await load_managed(s, principal, kb_id)
            job = await self.queue.enqueue_in(
                s, REINDEX_KIND, {"kb_id": kb.id, "force": force}, tenant_id=principal.tenant_id,
                ref=kb.id, max_attempts=MAX_ATTEMPTS, after=after,
            )  # fmt: skip
        return job_view(job)


async def _by_source(s: AsyncSession, kb_id: str, source: str) -> KbDocument | None:
    found: KbDocument | None = await s.scalar(
        select(KbDocument).where(KbDocument.kb_id == kb_id, KbDocument.source == source)
    )
    return found


async def _in_kb(s: AsyncSession, kb_id: str, doc_id: str) -> KbDocument:
    doc: KbDocument | None = await s.scalar(
        select(KbDocument).where(KbDocument.id == doc_id, KbDocument.kb_id == kb_id)
    )
    if doc is None:
        raise NotFound("no such document", details={"document_id": doc_id})
    return doc
