"""Exact vector search with numpy: the embedded default, and PostgreSQL without pgvector.

A matrix product over every chunk of a KB is exact and, at 384 dimensions, fast enough for
the sizes one node serves (about 10 ms at 100k chunks, see BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from warbler.kb.vectors.base import Matrix, Vector


class MemoryVectorIndex:
    name = "memory"
    wants_vectors = True

    def __init__(self) -> None:
        self._kbs: dict[str, tuple[list[str], Matrix, npt.NDArray[np.int8]]] = {}

    async def refresh(
        self, tenant_id: str, kb_id: str, chunk_ids: Sequence[str], vectors: Matrix | None,
        scripts: Sequence[int],
    ) -> None:  # fmt: skip
        if vectors is None or not len(chunk_ids) == len(vectors) == len(scripts):
            raise ValueError("the in-memory index needs one vector and script per chunk")
        self._kbs[kb_id] = (
            list(chunk_ids),
            np.ascontiguousarray(vectors, dtype=np.float32),
            np.asarray(scripts, dtype=np.int8),
        )

    async def search(
        self, tenant_id: str, kb_ids: Sequence[str], query: Vector, k: int,
        bias: Sequence[float],
    ) -> list[tuple[str, float]]:  # fmt: skip
        offsets = np.asarray(bias, dtype=np.float32)
        found: list[tuple[str, float, float]] = []
        for kb_id in kb_ids:
            if kb_id not in self._kbs:
                continue
            ids, matrix, scripts = self._kbs[kb_id]
            if not ids or matrix.shape[1] != query.shape[0]:
                continue
            cosine = matrix @ query
            ranked = cosine - offsets[scripts]
            top = np.argpartition(-ranked, k - 1)[:k] if len(ids) > k else np.arange(len(ids))
            found.extend((ids[i], float(cosine[i]), float(ranked[i])) for i in top)
        found.sort(key=lambda hit: -hit[2])
        return [(cid, cos) for cid, cos, _ in found[:k]]

    def forget(self, kb_id: str) -> None:
        self._kbs.pop(kb_id, None)
