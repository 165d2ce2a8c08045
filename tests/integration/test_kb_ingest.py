"""Ingestion end to end through the job queue: documents become chunks with tokens, vectors
and title paths; unchanged bytes are skipped; changed ones replace their chunks; a corrupt
file fails alone; URLs are fetched through the outbound policy; a change of model re-embeds."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import backend_settings
from tests.unit.test_parsers import make_docx, make_pdf
from warbler.config import Settings
from warbler.im.principal import Principal
from warbler.jobs.runner import RetryPolicy
from warbler.kb.embedders.base import Vectors
from warbler.kb.ingest.blobs import FOLDER
from warbler.kb.ingest.jobs import INGEST_KIND
from warbler.kb.ingest.pipeline import embedding_input
from warbler.search.tokenize import tokens
from warbler.services import Services
from warbler.store.models import Job
from warbler.store.models_kb import KbChunk, KbDocument, KnowledgeBase

GUIDE_V1 = """# Returns guide

## Returns
You can return any item within 30 days. Keep the receipt.

## Refunds
Refunds reach your account in five working days.

## 退货地址
请把商品寄回上海仓库。我们收到后会通知您。
"""
GUIDE_V2 = """# Returns guide

## Returns
You can return any item within 60 days now.

## 退款
退款会在三个工作日内到账。
"""


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data",
        outbound_allowed_hosts=["127.0.0.1"], kb_chunk_chars=120, kb_chunk_overlap=30,
        kb_embed_batch=2,
    )  # fmt: skip


@pytest.fixture
async def kb(services: Services, make_tenant: Any) -> dict[str, Any]:
    tenant = await make_tenant("acme")
    admin = await tenant.user("ada", role="admin")
    principal = Principal(tenant_id=tenant.id, user_id=admin.id, role="admin")
    created = await services.kb.create(principal, name="Help 帮助")
    return {"principal": principal, "id": created["id"], "tenant_id": tenant.id}


async def eventually(check: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def settled(services: Services, doc_id: str) -> KbDocument:
    """The document once it is ready or failed (its job finished)."""

    async def check() -> KbDocument | None:
        async with services.db.read() as s:
            doc = await s.get(KbDocument, doc_id)
        return doc if doc is not None and doc.status in ("ready", "failed") else None

    result: KbDocument = await eventually(check)
    return result


async def chunks_of(services: Services, doc_id: str) -> list[KbChunk]:
    async with services.db.read() as s:
        rows = await s.scalars(
            select(KbChunk).where(KbChunk.document_id == doc_id).order_by(KbChunk.position)
        )
        return list(rows.all())


async def version(services: Services, kb_id: str) -> int:
    async with services.db.read() as s:
        found = await s.scalar(
            select(KnowledgeBase.content_version).where(KnowledgeBase.id == kb_id)
        )
    return int(found or 0)


async def submit(services: Services, kb: dict[str, Any], name: str, data: bytes) -> Any:
    return await services.kb_ingest.submit_file(kb["principal"], kb["id"], name, data)


class Renamed:
    """The real embedder under another model name (a change of embedding model)."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name, self.dim = inner, name, inner.dim

    async def embed_queries(self, texts: list[str]) -> Vectors:
        return await self.inner.embed_queries(texts)

    async def embed_passages(self, texts: list[str]) -> Vectors:
        return await self.inner.embed_passages(texts)


async def test_an_uploaded_document_becomes_chunks_with_title_paths_tokens_and_vectors(
    services, kb, settings
):
    before = await version(services, kb["id"])
    submitted = await submit(services, kb, "guides/returns.md", GUIDE_V1.encode())
    assert submitted.outcome == "queued" and submitted.document["status"] == "pending"
    doc = await settled(services, submitted.document["id"])
    assert (doc.status, doc.progress, doc.error, doc.title) == ("ready", 1.0, None, "Returns guide")
    assert doc.embedder == services.embedder.name and doc.file_id is None

    chunks = await chunks_of(services, doc.id)
    assert [(c.position, c.title_path) for c in chunks] == [
        (0, "Returns"), (1, "Refunds"), (2, "退货地址"),
    ]  # fmt: skip
    assert chunks[2].text == "请把商品寄回上海仓库。我们收到后会通知您。"
    assert doc.chunk_count == 3
    for chunk in chunks:
        assert chunk.embedder == services.embedder.name
        vector = np.frombuffer(chunk.embedding, dtype="<f4")
        assert vector.shape == (services.embedder.dim,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
        context = embedding_input("Returns guide", chunk.title_path, chunk.text)
        assert chunk.tokens == " ".join(tokens(context))
    assert "上海" in chunks[2].tokens.split()
    assert await version(services, kb["id"]) == before + 1
    # The uploaded bytes are deleted once ingested.
    folder = settings.data_dir / FOLDER / kb["tenant_id"] / kb["id"]
    assert not [p for p in folder.iterdir() if p.is_file()]


async def test_the_same_bytes_again_are_skipped_and_changed_bytes_replace_the_chunks(services, kb):
    first = await submit(services, kb, "returns.md", GUIDE_V1.encode())
    doc = await settled(services, first.document["id"])
    old_ids = {c.id for c in await chunks_of(services, doc.id)}
    assert len(old_ids) == 3
    v1 = await version(services, kb["id"])

    again = await submit(services, kb, "returns.md", GUIDE_V1.encode())
    assert again.outcome == "skipped" and again.document["id"] == doc.id
    assert {c.id for c in await chunks_of(services, doc.id)} == old_ids
    assert await version(services, kb["id"]) == v1

    changed = await submit(services, kb, "returns.md", GUIDE_V2.encode())
    assert changed.outcome == "queued" and changed.document["id"] == doc.id
    doc = await settled(services, doc.id)
    new_chunks = await chunks_of(services, doc.id)
    assert doc.status == "ready" and doc.chunk_count == len(new_chunks) == 2
    assert not old_ids & {c.id for c in new_chunks}
    assert [c.title_path for c in new_chunks] == ["Returns", "退款"]
    async with services.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(KbChunk))
    assert total == 2
    assert await version(services, kb["id"]) == v1 + 1


async def test_a_corrupt_pdf_fails_alone_with_a_clear_error_and_is_not_retried(services, kb):
    good_pdf = make_pdf([["Warranty covers two years.", "Batteries one year."]])
    corrupt = good_pdf[: len(good_pdf) // 3]
    bad = await submit(services, kb, "broken.pdf", corrupt)
    good = await submit(services, kb, "warranty.pdf", good_pdf)
    docx = await submit(
        services, kb, "leave.docx", make_docx([("h1", "Leave"), ("p", "Fifteen days a year.")])
    )
    failed = await settled(services, bad.document["id"])
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("could not read PDF: ")
    for ok in (good, docx):
        assert (await settled(services, ok.document["id"])).status == "ready"
    async with services.db.read() as s:
        job = await s.scalar(select(Job).where(Job.ref == failed.id))
    assert job is not None and (job.status, job.attempts) == ("dead", 1)
    assert job.last_error == failed.error
    assert await chunks_of(services, failed.id) == []


async def test_a_transient_embedding_failure_is_retried_and_visible_meanwhile(services, kb):
    calls = {"n": 0}
    real = services.kb_ingest.ingestor.embedder

    class Flaky(Renamed):
        async def embed_passages(self, texts: list[str]) -> Vectors:
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("embedding server unreachable")
            return await super().embed_passages(texts)

    services.kb_ingest.ingestor.embedder = Flaky(real, real.name)
    fast = RetryPolicy(base_seconds=0.5, max_seconds=0.5, lease_seconds=30)
    services.jobs.register(INGEST_KIND, services.jobs._kinds[INGEST_KIND].handler, fast)
    submitted = await submit(services, kb, "returns.md", GUIDE_V1.encode())

    async def waiting_for_retry() -> KbDocument | None:
        async with services.db.read() as s:
            doc = await s.get(KbDocument, submitted.document["id"])
        return doc if doc is not None and doc.error else None

    waiting = await eventually(waiting_for_retry)
    assert waiting.status == "pending"
    assert waiting.error == "embedding failed: embedding server unreachable (will retry)"
    doc = await settled(services, waiting.id)
    assert (doc.status, doc.error, doc.chunk_count) == ("ready", None, 3)


async def test_an_ingestion_that_crashed_midway_runs_again_to_the_same_end_state(services, kb):
    real = services.kb_ingest.ingestor.embedder

    class Crashing(Renamed):
        async def embed_passages(self, texts: list[str]) -> Vectors:
            raise asyncio.CancelledError()  # the worker dies mid-embedding

    submitted = await services.kb_ingest.submit_file(
        kb["principal"], kb["id"], "returns.md", GUIDE_V1.encode(), enqueue=False
    )
    services.kb_ingest.ingestor.embedder = Crashing(real, real.name)
    with pytest.raises(asyncio.CancelledError):
        await services.kb_ingest.ingest_now(kb["principal"], submitted)
    async with services.db.read() as s:
        stuck = await s.get(KbDocument, submitted.document["id"])
    assert stuck is not None and stuck.status == "processing"

    services.kb_ingest.ingestor.embedder = real
    progress: list[float] = []
    outcome = await services.kb_ingest.ingest_now(kb["principal"], submitted, progress.append)
    assert (outcome.result, outcome.chunks) == ("ingested", 3)
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    first_ids = [c.id for c in await chunks_of(services, stuck.id)]
    # The same job delivered once more (its completion was lost): nothing changes.
    again = await services.kb_ingest.ingest_now(kb["principal"], submitted)
    assert again.result == "superseded"
    assert [c.id for c in await chunks_of(services, stuck.id)] == first_ids


@pytest.mark.slow
async def test_a_new_embedding_model_reembeds_unchanged_documents(services, kb):
    first = await submit(services, kb, "returns.md", GUIDE_V1.encode())
    doc = await settled(services, first.document["id"])
    other = await submit(services, kb, "other.md", b"# Other\n\nShipping is free.")
    await settled(services, other.document["id"])
    ids = [c.id for c in await chunks_of(services, doc.id)]

    real = services.kb_ingest.ingestor.embedder
    services.kb_ingest.ingestor.embedder = Renamed(real, "test:other-model")
    # Re-ingesting the same bytes is not skipped: the stored vectors are another model's.
    again = await submit(services, kb, "returns.md", GUIDE_V1.encode())
    assert again.outcome == "queued"
    doc = await settled(services, doc.id)
    assert {c.embedder for c in await chunks_of(services, doc.id)} == {"test:other-model"}
    assert doc.embedder == "test:other-model"

    # The reindex job re-embeds the rest in place (same chunk ids, new model).
    other_ids = [c.id for c in await chunks_of(services, other.document["id"])]
    before = await version(services, kb["id"])
    job = await services.kb_ingest.reindex(kb["principal"], kb["id"])

    async def done() -> Any:
        async with services.db.read() as s:
            row = await s.get(Job, job["id"])
        return row if row is not None and row.status == "done" else None

    finished = await eventually(done)
    assert finished.result == {"documents": 1, "chunks": 1, "other": 0}
    reembedded = await chunks_of(services, other.document["id"])
    assert [c.id for c in reembedded] == other_ids
    assert {c.embedder for c in reembedded} == {"test:other-model"}
    assert await version(services, kb["id"]) == before + 1
    assert ids  # the first document kept chunks throughout


# -- URLs --------------------------------------------------------------------------------------


class Site:
    """A web server in a thread serving ``pages`` {path: (status, content type, body)}."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str, bytes]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = site.pages.get(self.path, (404, "text/plain", b"no"))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", body.decode())
                    body = b""
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()
    s.thread.join(5)


PAGE = b"<html><head><title>Shipping</title></head><body><h1>Shipping</h1><p>Free over 50 euros.</p></body></html>"


async def test_a_url_is_fetched_ingested_refetched_and_skipped_when_unchanged(services, kb, site):
    site.pages["/help/shipping.html"] = (200, "text/html; charset=utf-8", PAGE)
    site.pages["/old"] = (301, "text/html", b"/help/shipping.html")
    submitted = await services.kb_ingest.submit_url(kb["principal"], kb["id"], site.url("/old"))
    doc = await settled(services, submitted.document["id"])
    assert (doc.status, doc.format, doc.title, doc.link) == (
        "ready",
        "url",
        "Shipping",
        site.url("/old"),
    )
    chunks = await chunks_of(services, doc.id)
    assert [c.text for c in chunks] == ["Free over 50 euros."]

    again = await services.kb_ingest.submit_url(kb["principal"], kb["id"], site.url("/old"))
    assert again.document["id"] == doc.id
    await settled(services, doc.id)
    async with services.db.read() as s:
        results = (await s.scalars(select(Job.result).where(Job.ref == doc.id))).all()
    assert sorted(r["result"] for r in results if r) == ["ingested", "skipped"]
    assert [c.id for c in await chunks_of(services, doc.id)] == [c.id for c in chunks]

    site.pages["/help/shipping.html"] = (200, "text/html", PAGE.replace(b"50", b"30"))
    await services.kb_ingest.submit_url(kb["principal"], kb["id"], site.url("/old"))

    async def replaced() -> Any:
        current = await chunks_of(services, doc.id)
        return current if current and current[0].text == "Free over 30 euros." else None

    assert len(await eventually(replaced)) == 1


async def test_a_missing_or_oversized_url_fails_with_its_reason(services, kb, site, settings):
    site.pages["/big.txt"] = (200, "text/plain", b"x" * (settings.kb_max_document_bytes + 1))
    site.pages["/pic"] = (200, "image/png", b"\x89PNG")
    expected = {
        "/missing.html": "answered HTTP 404",
        "/big.txt": f"larger than {settings.kb_max_document_bytes} bytes",
        "/pic": "unsupported content type image/png",
    }
    for path, reason in expected.items():
        submitted = await services.kb_ingest.submit_url(kb["principal"], kb["id"], site.url(path))
        doc = await settled(services, submitted.document["id"])
        assert doc.status == "failed" and doc.error is not None and reason in doc.error, doc.error


async def test_deleting_a_document_removes_its_chunks_and_waiting_bytes(services, kb, settings):
    ready = await settled(
        services, (await submit(services, kb, "a.md", GUIDE_V1.encode())).document["id"]
    )
    waiting = await services.kb_ingest.submit_file(
        kb["principal"], kb["id"], "b.md", GUIDE_V2.encode(), enqueue=False
    )
    folder = settings.data_dir / FOLDER / kb["tenant_id"] / kb["id"]
    assert len(list(folder.iterdir())) == 1  # b.md's bytes wait for ingestion
    before = await version(services, kb["id"])

    await services.kb_ingest.delete_document(kb["principal"], kb["id"], ready.id)
    await services.kb_ingest.delete_document(kb["principal"], kb["id"], waiting.document["id"])
    assert await chunks_of(services, ready.id) == []
    assert list(folder.iterdir()) == []
    assert await version(services, kb["id"]) == before + 2
    # A job for a deleted document finds nothing to do.
    assert (await services.kb_ingest.ingest_now(kb["principal"], waiting)).result == "deleted"
