"""Vector search in PostgreSQL with pgvector (HNSW), when the ``vector`` extension exists.

Why a side table made at run time instead of a column in a migration: the extension is
optional (Debian's PostgreSQL 15 has none; the migrations must run everywhere), and the
column's type needs the embedder's dimension, which is a setting. So the first node that
finds the extension creates ``kb_chunk_vectors_<dim>`` and its HNSW index (idempotently,
under an advisory lock), and copies each KB's vectors there from ``kb_chunks.embedding``
when it sees the KB's ``content_version`` change. Rows reference their chunk with
``ON DELETE CASCADE``, so deleting or re-ingesting a document never leaves stale vectors.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence

import numpy as np
from sqlalchemy import text

from warbler.kb.vectors.base import Matrix, Vector
from warbler.store.db import Database

log = logging.getLogger("warbler.kb")

# pgvector's HNSW index takes at most 2,000 dimensions of type ``vector``.
MAX_HNSW_DIM = 2000
_INSERT_BATCH = 500
_VEC = "CAST(CAST(:{name} AS real[]) AS vector)"


def table_name(dim: int) -> str:
    return f"kb_chunk_vectors_{int(dim)}"


async def enable_pgvector(db: Database) -> str | None:
    """Create the extension if it is missing and we may; the installed version, or None."""
    if db.is_sqlite:
        return None
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except Exception as exc:  # not installed, or no privilege to create it
        log.info("pgvector is not available (%s): exact vector search in memory", exc)
        return None
    async with db.engine.connect() as conn:
        version = await conn.scalar(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        )
    return str(version) if version else None


def _at_least(version: str, wanted: tuple[int, ...]) -> bool:
    parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
    return parts >= wanted


class PgVectorIndex:
    name = "pgvector"
    wants_vectors = False

    def __init__(self, db: Database, embedder_name: str, version: str) -> None:
        self.db = db
        self.embedder = embedder_name
        # 0.8 added iterative index scans: a filtered HNSW search (one KB among many) keeps
        # scanning until it has ``k`` rows instead of returning too few.
        self._iterative = _at_least(version, (0, 8, 0))
        self._tables: set[int] = set()

    async def _ensure_table(self, dim: int) -> str:
        name = table_name(dim)
        if dim in self._tables:
            return name
        async with self.db.engine.begin() as conn:
            # Two nodes creating the same index at once would collide in pg_class.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(name.encode())}
            )
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {name} ("
                    " chunk_id VARCHAR(26) PRIMARY KEY REFERENCES kb_chunks(id) ON DELETE CASCADE,"
                    " tenant_id VARCHAR(26) NOT NULL,"
                    " kb_id VARCHAR(26) NOT NULL,"
                    " embedder VARCHAR(100) NOT NULL,"
                    " script SMALLINT NOT NULL,"
                    f" embedding vector({int(dim)}) NOT NULL)"
                )
            )
            await conn.execute(
                text(f"CREATE INDEX IF NOT EXISTS ix_{name}_kb ON {name} (kb_id, script)")
            )
            await conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS ix_{name}_hnsw ON {name} "
                    "USING hnsw (embedding vector_cosine_ops)"
                )
            )
        self._tables.add(dim)
        return name

    async def refresh(
        self,
        tenant_id: str,
        kb_id: str,
        chunk_ids: Sequence[str],
        vectors: Matrix | None,
        scripts: Sequence[int],
    ) -> None:
        """Copy the vectors of the KB's chunks that the side table lacks (removed chunks
        went with their rows, by cascade)."""
        script_of = dict(zip(chunk_ids, scripts, strict=True))
        dims = await self._dims(tenant_id, kb_id)
        for dim in dims:
            name = await self._ensure_table(dim)
            async with self.db.read() as s:
                rows = (
                    await s.execute(
                        text(
                            "SELECT c.id, c.embedding FROM kb_chunks c "
                            "WHERE c.tenant_id = :t AND c.kb_id = :kb AND c.embedder = :e "
                            f"AND NOT EXISTS (SELECT 1 FROM {name} v WHERE v.chunk_id = c.id "
                            "AND v.embedder = c.embedder)"
                        ),
                        {"t": tenant_id, "kb": kb_id, "e": self.embedder},
                    )
                ).all()
            # Chunks ingested after the retriever read the KB wait for the next refresh.
            rows = [r for r in rows if len(r[1]) == 4 * dim and r[0] in script_of]
            for start in range(0, len(rows), _INSERT_BATCH):
                batch = rows[start : start + _INSERT_BATCH]
                params = [
                    {
                        "id": cid,
                        "s": int(script_of[cid]),
                        "v": np.frombuffer(blob, dtype="<f4").tolist(),
                    }
                    for cid, blob in batch
                ]
                async with self.db.write() as s:
                    # Only chunks that still exist: a document re-ingested meanwhile took its
                    # old chunks with it.
                    await s.execute(
                        text(
                            f"INSERT INTO {name} "
                            "(chunk_id, tenant_id, kb_id, embedder, script, embedding) "
                            f"SELECT c.id, c.tenant_id, c.kb_id, c.embedder, :s, "
                            f"{_VEC.format(name='v')} FROM kb_chunks c WHERE c.id = :id "
                            # Re-embedding keeps chunk ids: replace the old model's vector.
                            "ON CONFLICT (chunk_id) DO UPDATE SET embedder = EXCLUDED.embedder, "
                            "script = EXCLUDED.script, embedding = EXCLUDED.embedding"
                        ),
                        params,
                    )
            if rows:
                log.info("pgvector: copied %d vectors of kb %s into %s", len(rows), kb_id, name)

    async def _dims(self, tenant_id: str, kb_id: str) -> list[int]:
        async with self.db.read() as s:
            found = await s.scalars(
                text(
                    "SELECT DISTINCT octet_length(embedding) / 4 FROM kb_chunks "
                    "WHERE tenant_id = :t AND kb_id = :kb AND embedder = :e"
                ),
                {"t": tenant_id, "kb": kb_id, "e": self.embedder},
            )
            return [int(d) for d in found.all() if 0 < int(d) <= MAX_HNSW_DIM]

    async def search(
        self, tenant_id: str, kb_ids: Sequence[str], query: Vector, k: int,
        bias: Sequence[float],
    ) -> list[tuple[str, float]]:  # fmt: skip
        dim = int(query.shape[0])
        if not kb_ids or dim > MAX_HNSW_DIM:
            return []
        name = await self._ensure_table(dim)
        q = _VEC.format(name="q")
        found: list[tuple[str, float, float]] = []
        async with self.db.read() as s:
            # Candidates for fusion come from the top of this list: search a little wider
            # than pgvector's default of 40 when more are wanted.
            await s.execute(
                text("SELECT set_config('hnsw.ef_search', :v, true)"), {"v": str(max(40, 2 * k))}
            )
            if self._iterative:
                await s.execute(
                    text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
                )
            # One nearest-neighbour search per script: the bias is constant within one, so
            # each list is already in margin order, and merging them ranks by margin.
            for script, offset in enumerate(bias):
                rows = await s.execute(
                    text(
                        f"SELECT chunk_id, 1 - (embedding <=> {q}) AS score FROM {name} "
                        "WHERE tenant_id = :t AND kb_id = ANY(:kbs) AND embedder = :e "
                        f"AND script = :s ORDER BY embedding <=> {q} LIMIT :k"
                    ),
                    {
                        "q": query.tolist(),
                        "t": tenant_id,
                        "kbs": list(kb_ids),
                        "e": self.embedder,
                        "s": script,
                        "k": k,
                    },
                )
                found.extend((str(cid), float(cos), float(cos) - offset) for cid, cos in rows.all())
        found.sort(key=lambda hit: -hit[2])
        return [(cid, cos) for cid, cos, _ in found[:k]]

    def forget(self, kb_id: str) -> None:
        return None  # nothing in memory; rows leave with their chunks
