"""The one interface both vector indexes implement (numpy in memory, pgvector in PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]  # shape (dim,), L2-normalised
Matrix = npt.NDArray[np.float32]  # shape (n, dim), one row per chunk


class VectorIndex(Protocol):
    """Nearest chunks by cosine similarity, per knowledge base.

    The retriever calls ``refresh`` whenever it (re)loads a KB because its
    ``content_version`` changed, then ``search`` on every question.
    """

    name: str  # "memory" or "pgvector", shown in logs and benchmarks
    # True: ``refresh`` needs the chunk vectors (read from ``kb_chunks.embedding``).
    # False: the index reads them itself and the retriever does not keep them in memory.
    wants_vectors: bool

    async def refresh(
        self,
        tenant_id: str,
        kb_id: str,
        chunk_ids: Sequence[str],
        vectors: Matrix | None,
        scripts: Sequence[int],
    ) -> None:
        """Make the KB's searchable set exactly ``chunk_ids`` (the chunks of the current
        embedder); ``scripts`` gives each chunk's script (``warbler.kb.calibration``)."""
        ...

    async def search(
        self,
        tenant_id: str,
        kb_ids: Sequence[str],
        query: Vector,
        k: int,
        bias: Sequence[float],
    ) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, cosine similarity) pairs over these KBs, ranked by cosine
        minus ``bias[script of the chunk]`` (the question's baseline per script), best
        first."""
        ...

    def forget(self, kb_id: str) -> None:
        """Drop what is held in memory for a KB (it was deleted or is being reloaded)."""
        ...
