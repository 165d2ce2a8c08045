"""The ingestion jobs: ``kb.ingest`` (one document) and ``kb.reindex`` (re-embed a KB)."""

from __future__ import annotations

from typing import Any

from warbler.jobs.runner import JobFailure, RetryPolicy
from warbler.kb.ingest.pipeline import IngestFailed, Ingestor
from warbler.kb.ingest.reindex import reindex_kb
from warbler.store.models import Job

INGEST_KIND = "kb.ingest"
REINDEX_KIND = "kb.reindex"
MAX_ATTEMPTS = 3
# Parsing and embedding a large document takes minutes: a long lease, renewed while it runs.
POLICY = RetryPolicy(base_seconds=5.0, max_seconds=600.0, lease_seconds=120.0)


class IngestJobs:
    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor

    async def ingest(self, job: Job) -> dict[str, Any]:
        """Payload ``{"document_id", "file_id"}`` (``file_id`` null for a URL)."""
        if job.tenant_id is None:
            raise JobFailure("an ingestion job needs a tenant", retry=False)
        try:
            outcome = await self.ingestor.run(
                job.tenant_id,
                str(job.payload["document_id"]),
                job.payload.get("file_id"),
                final_attempt=job.attempts >= job.max_attempts,
            )
        except IngestFailed as exc:
            raise JobFailure(exc.message, retry=exc.retryable) from None
        return outcome.as_dict()

    async def reindex(self, job: Job) -> dict[str, Any]:
        """Payload ``{"kb_id", "force"}``."""
        if job.tenant_id is None:
            raise JobFailure("a reindex job needs a tenant", retry=False)
        counts = await reindex_kb(
            self.ingestor,
            job.tenant_id,
            str(job.payload["kb_id"]),
            force=bool(job.payload.get("force")),
        )
        return dict(counts)
