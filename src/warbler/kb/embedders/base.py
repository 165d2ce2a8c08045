"""The one interface every embedding model implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors (so a dot product is cosine similarity).

    Queries and passages are embedded differently by models trained that way (e5 prefixes
    ``query:`` / ``passage:``); others treat both the same.
    """

    name: str  # stored with every vector: a change of name means re-embedding
    dim: int

    async def embed_queries(self, texts: list[str]) -> Vectors:
        """Shape (len(texts), dim)."""
        ...

    async def embed_passages(self, texts: list[str]) -> Vectors:
        """Shape (len(texts), dim)."""
        ...
