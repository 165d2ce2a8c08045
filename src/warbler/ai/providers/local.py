"""A local model: llama.cpp's OpenAI-compatible server (``xllamacpp``) over a GGUF file.

One server per process, started on first use from ``WARBLER_AI_LOCAL_MODEL_PATH`` on
127.0.0.1 (a free port, a random API key so other local users cannot borrow it) and stopped
by ``aclose()`` at shutdown (or at interpreter exit). Requests then go through the ordinary
OpenAI-compatible provider, so streaming, tool calls, usage and timeouts behave the same.
``xllamacpp`` is an optional extra (``pip install warbler[local]``), imported only here.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from warbler.ai.providers.base import (
    ChatRequest,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    StreamEvent,
)
from warbler.ai.providers.config import ProviderConfig
from warbler.ai.providers.openai_compat import OpenAICompatProvider
from warbler.config import Settings

log = logging.getLogger("warbler.ai.providers")

START_TIMEOUT = 120.0  # seconds to load the model and answer /health
CONTEXT_TOKENS = 8192  # shared by the parallel slots
PARALLEL = 2


@dataclasses.dataclass
class _Running:
    model_path: str
    server: Any  # xllamacpp.Server; stops when released
    base_url: str  # "http://127.0.0.1:PORT/v1"
    api_key: str


_lock = threading.Lock()
_running: _Running | None = None


def _start(model_path: str) -> _Running:
    """Start (or reuse) the process's server for ``model_path``; blocking, thread-safe."""
    global _running
    with _lock:
        if _running is not None and _running.model_path == model_path:
            return _running
        if _running is not None:
            _stop_locked()
        try:
            import xllamacpp
        except ImportError:
            raise ProviderRejected(
                "the local model needs xllamacpp: pip install 'warbler[local]'"
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = model_path
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the OS picks a free one; listening_address tells which
        params.n_ctx = CONTEXT_TOKENS
        params.n_parallel = PARALLEL
        # llama.cpp logs every request to stderr; only when we debug.
        params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else 0
        key = secrets.token_urlsafe(24)
        params.api_keys = [key]
        started = time.monotonic()
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:
            raise ProviderUnavailable(
                f"the local model did not start: {type(exc).__name__}: {exc}"
            ) from None
        address = str(server.listening_address).rstrip("/")
        _running = _Running(model_path, server, f"{address}/v1", key)
        log.info(
            "local model %s serving on %s (%.1fs)",
            Path(model_path).name,
            address,
            time.monotonic() - started,
        )
        return _running


def _stop_locked() -> None:
    global _running
    if _running is not None:
        running, _running = _running, None
        # xllamacpp has no stop(): its server stops (joining its threads) and frees the
        # model when the last reference goes, so drop ours even if _Running is still held.
        server, running.server = running.server, None
        del server


def _stop() -> None:
    with _lock:
        _stop_locked()


atexit.register(_stop)


async def aclose() -> None:
    """Stop the process's local model server (call at shutdown); a no-op if none runs."""
    await asyncio.to_thread(_stop)


async def _wait_ready(client: httpx.AsyncClient, running: _Running, deadline: float) -> None:
    """Poll /health until the model answers (it says 503 while loading)."""
    url = running.base_url.removesuffix("/v1") + "/health"
    while True:
        try:
            response = await client.get(url, timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ProviderTimeout("the local model did not become ready in time")
        await asyncio.sleep(0.1)


class LocalProvider:
    """``kind: local``: the GGUF at ``settings.ai_local_model_path`` (an operator setting,
    never a tenant's: the file is on the server's own disk)."""

    def __init__(
        self,
        config: ProviderConfig,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        model_path: str | None = None,
    ) -> None:
        self.config = config
        self.name = config.label
        self._settings = settings
        self._model_path = model_path if model_path is not None else settings.ai_local_model_path
        self._client = client
        self._inner: OpenAICompatProvider | None = None

    def __repr__(self) -> str:
        return f"LocalProvider(name={self.name!r}, model_path={self._model_path!r})"

    async def _provider(self) -> OpenAICompatProvider:
        if not self._model_path:
            raise ProviderRejected("no local model configured (WARBLER_AI_LOCAL_MODEL_PATH)")
        if not await asyncio.to_thread(Path(self._model_path).is_file):
            raise ProviderRejected(f"the local model file is missing: {self._model_path}")
        deadline = time.monotonic() + max(
            START_TIMEOUT, self.config.request_timeout(self._settings)
        )
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                running = await asyncio.to_thread(_start, self._model_path)
        except TimeoutError:
            # The loading thread carries on; the next request finds the server running.
            raise ProviderTimeout("the local model is still loading") from None
        inner = self._inner
        if inner is None or inner.config.base_url != running.base_url:
            if inner is not None:
                await inner.aclose()
            config = dataclasses.replace(
                self.config,
                base_url=running.base_url,
                api_key=running.api_key,
                model=self.config.model or Path(self._model_path).stem,
            )
            inner = OpenAICompatProvider(config, self._settings, client=self._client)
            await _wait_ready(inner._client, running, deadline)
            self._inner = inner
        return inner

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        provider = await self._provider()
        async for event in provider.stream(request):
            yield event

    async def aclose(self) -> None:
        """Close this provider's connections; the shared server keeps running (see
        the module's ``aclose``)."""
        if self._inner is not None:
            await self._inner.aclose()
            self._inner = None
