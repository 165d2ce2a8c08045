"""A bot's fallback chain over fake vendors: retries, backoff, fallbacks, bounded waits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.fakes.anthropic_wire import FakeAnthropic
from tests.fakes.openai_wire import FakeOpenAI, Reply
from warbler.ai.providers.base import (
    ChatMessage,
    ChatRequest,
    Done,
    ProviderError,
    StreamEvent,
    StreamReset,
    TextDelta,
    ToolCallsReady,
)
from warbler.ai.providers.chain import AllProvidersFailed, FallbackChain
from warbler.ai.providers.config import ProviderConfig
from warbler.ai.providers.factory import build_chain, build_provider
from warbler.config import Settings

KEY_A = "sk-primary-SECRET-aaaaaaaaaaaa"
KEY_B = "sk-backup-SECRET-bbbbbbbbbbbb"
IDLE = 0.4


@pytest.fixture
def ai_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        ai_idle_timeout_seconds=IDLE,
        ai_request_timeout_seconds=3.0,
        ai_max_retries=2,
        ai_retry_base_seconds=0.05,
    )


@pytest.fixture
def backup() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


class Sleeps:
    """Records the chain's backoff delays and sleeps for real (they are short)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(seconds)


def chain_of(
    settings: Settings, *fakes: FakeOpenAI | FakeAnthropic, sleep: Sleeps | None = None, **cfg: Any
) -> FallbackChain:
    providers = []
    for i, fake in enumerate(fakes):
        kind = "anthropic" if isinstance(fake, FakeAnthropic) else "openai"
        config = ProviderConfig(
            kind,
            ["primary", "backup", "third"][i],
            base_url=fake.base_url,
            api_key=[KEY_A, KEY_B, KEY_B][i],
            model="m",
            **cfg,
        )
        providers.append(build_provider(config, settings))
    return FallbackChain(providers, settings, sleep=sleep or Sleeps())


def ask(text: str = "hello") -> ChatRequest:
    return ChatRequest(model="", messages=(ChatMessage("user", text),))


async def run(chain: FallbackChain, request: ChatRequest | None = None) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    try:
        async for event in chain.stream(request or ask()):
            events.append(event)
    finally:
        await chain.aclose()
    return events


def final_text(events: list[StreamEvent]) -> str:
    """What a client shows: text since the last reset."""
    text = ""
    for event in events:
        if isinstance(event, StreamReset):
            text = ""
        elif isinstance(event, TextDelta):
            text += event.text
    return text


def done_of(events: list[StreamEvent]) -> Done:
    assert isinstance(events[-1], Done)
    return events[-1]


async def test_rate_limit_then_success_waits_the_retry_after(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=429, retry_after=0.3), Reply(text="second time lucky"))
    sleeps = Sleeps()
    events = await run(chain_of(ai_settings, fake_openai, sleep=sleeps))

    assert final_text(events) == "second time lucky"
    assert sleeps.delays == [pytest.approx(0.3)]
    done = done_of(events)
    assert done.extra["provider"] == "openai:primary"
    assert done.extra["attempts"] == 2 and done.extra["fallbacks"] == 0
    assert done.extra["failures"][0]["status"] == 429
    assert not any(isinstance(e, StreamReset) for e in events)  # nothing was streamed yet


async def test_server_errors_back_off_exponentially_then_fall_back(
    fake_openai: FakeOpenAI, backup: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(*[Reply(status=500)] * 3)
    backup.script(Reply(text="from the backup"))
    sleeps = Sleeps()
    events = await run(chain_of(ai_settings, fake_openai, backup, sleep=sleeps))

    assert final_text(events) == "from the backup"
    assert len(fake_openai.chat_requests) == 3  # one try and max_retries=2 retries
    assert sleeps.delays == [pytest.approx(0.05), pytest.approx(0.1)]
    done = done_of(events)
    assert done.extra["provider"] == "openai:backup"
    assert done.extra["attempts"] == 4 and done.extra["fallbacks"] == 1


async def test_rejected_key_falls_back_at_once_without_retrying(
    fake_openai: FakeOpenAI, backup: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=401))
    sleeps = Sleeps()
    events = await run(chain_of(ai_settings, fake_openai, backup, sleep=sleeps))

    assert final_text(events) == "echo: hello"
    assert len(fake_openai.chat_requests) == 1
    assert sleeps.delays == []
    assert done_of(events).extra["provider"] == "openai:backup"


async def test_stream_cut_midway_resets_then_the_fallback_answers(
    fake_openai: FakeOpenAI, backup: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(text="this answer will break off", cut_after_chunks=2))
    backup.script(Reply(text="a whole answer"))
    chain = chain_of(ai_settings, fake_openai, backup, max_retries=0)
    events = await run(chain)

    reset = next(i for i, e in enumerate(events) if isinstance(e, StreamReset))
    before = "".join(e.text for e in events[:reset] if isinstance(e, TextDelta))
    assert before == "this answer "
    assert "primary" in events[reset].reason  # type: ignore[union-attr]
    assert final_text(events) == "a whole answer"
    assert done_of(events).extra["provider"] == "openai:backup"


async def test_hang_past_the_idle_timeout_falls_back_within_a_bound(
    fake_openai: FakeOpenAI, backup: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(hang_seconds=60))
    started = time.monotonic()
    events = await run(chain_of(ai_settings, fake_openai, backup, max_retries=0))

    assert final_text(events) == "echo: hello"
    assert time.monotonic() - started < IDLE + 2.5  # the hang is 60 s


async def test_openai_failing_falls_back_to_anthropic(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=503))
    fake_anthropic.script(Reply(text="Claude here, 你好"))
    events = await run(chain_of(ai_settings, fake_openai, fake_anthropic, max_retries=0))

    assert final_text(events) == "Claude here, 你好"
    assert done_of(events).extra["provider"] == "anthropic:backup"


async def test_when_every_provider_fails_the_error_names_each_without_keys(
    fake_openai: FakeOpenAI,
    backup: FakeOpenAI,
    ai_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.script(*[Reply(status=500, error_message=f"boom {KEY_A}")] * 3)
    backup.script(Reply(status=401, error_message=f"Incorrect API key provided: {KEY_B}"))
    started = time.monotonic()
    with pytest.raises(AllProvidersFailed) as caught:
        await run(chain_of(ai_settings, fake_openai, backup))
    assert time.monotonic() - started < 3

    error = caught.value
    assert [name for name, _ in error.failures] == ["openai:primary", "openai:backup"]
    assert [e.status for _, e in error.failures] == [500, 401]
    assert "openai:primary" in str(error) and "HTTP 500" in str(error)
    assert "openai:backup" in str(error) and "Incorrect API key provided" in str(error)
    assert error.retryable  # the 500 may pass: the reply job may try again later
    everything = f"{error} {error!r} {error.failures!r} {caplog.text}"
    assert KEY_A not in everything and KEY_B not in everything
    assert "SECRET" not in everything


async def test_all_rejected_is_not_worth_retrying_later(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=400, error_message="model not found"))
    with pytest.raises(AllProvidersFailed) as caught:
        await run(chain_of(ai_settings, fake_openai))
    assert not caught.value.retryable


async def test_a_retry_after_beyond_the_cap_moves_on_instead_of_waiting(
    fake_openai: FakeOpenAI, backup: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=429, retry_after=3600))
    sleeps = Sleeps()
    events = await run(chain_of(ai_settings, fake_openai, backup, sleep=sleeps))
    assert sleeps.delays == []
    assert done_of(events).extra["provider"] == "openai:backup"


async def test_tool_calls_pass_through_the_chain(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=500), Reply(tool_calls=[("search_kb", {"q": "价格"})]))
    events = await run(chain_of(ai_settings, fake_openai))
    ready = [e for e in events if isinstance(e, ToolCallsReady)]
    assert ready[0].calls[0].arguments == {"q": "价格"}
    assert done_of(events).finish_reason == "tool_calls"


SCENARIOS: dict[str, list[Reply]] = {
    "streamed text": [Reply(text="plain answer", usage=(3, 2))],
    "tool calls": [Reply(tool_calls=[("a", {"x": 1}), ("b", {"y": "二"})])],
    "no usage": [Reply(text="estimate me", omit_usage=True)],
    "429": [Reply(status=429, retry_after=0.01)] * 5,
    "500": [Reply(status=500)] * 5,
    "cut stream": [Reply(text="one two three", cut_after_chunks=1)] * 5,
    "hang before headers": [Reply(hang_seconds=60)] * 5,
    "stall mid-stream": [Reply(text="a b c", hang_after_chunks=1, hang_seconds=60)] * 5,
    "slow trickle": [Reply(text=" ".join(["w"] * 50), chunk_delay=0.1)] * 5,
}


@pytest.mark.parametrize("with_fallback", [False, True], ids=["alone", "with fallback"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_call_ends_with_an_answer_or_a_typed_error_in_bounded_time(
    scenario: str,
    with_fallback: bool,
    fake_openai: FakeOpenAI,
    backup: FakeOpenAI,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path,
        ai_idle_timeout_seconds=0.3,
        ai_request_timeout_seconds=1.0,
        ai_max_retries=1,
        ai_retry_base_seconds=0.01,
    )
    fake_openai.script(*SCENARIOS[scenario])
    fakes = (fake_openai, backup) if with_fallback else (fake_openai,)
    # Worst case: 2 attempts x the 1 s total timeout on the first provider, the backup's
    # answer, and slack for a busy machine; a hang would take 60 s.
    bound = 2 * 1.0 + 2.5
    started = time.monotonic()
    try:
        events = await asyncio.wait_for(run(chain_of(settings, *fakes)), timeout=bound + 5)
    except ProviderError as exc:
        outcome = f"error {type(exc).__name__}"
    else:
        done = done_of(events)
        outcome = f"answer from {done.extra['provider']}"
        assert final_text(events) or any(isinstance(e, ToolCallsReady) for e in events)
    elapsed = time.monotonic() - started
    assert elapsed < bound, f"{scenario}: {outcome} after {elapsed:.2f}s"
    failing = scenario not in ("streamed text", "tool calls", "no usage")
    if not failing:
        assert outcome == "answer from openai:primary"
    elif with_fallback:
        assert outcome == "answer from openai:backup"
    else:
        assert outcome == "error AllProvidersFailed"


async def test_build_chain_builds_each_kind(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    configs = [
        ProviderConfig("openai", "a", base_url=fake_openai.base_url, model="m"),
        ProviderConfig("anthropic", "b", base_url=fake_anthropic.base_url, model="c"),
    ]
    chain = build_chain(configs, ai_settings)
    assert chain.name == "chain:openai:a,anthropic:b"
    assert final_text(await run(chain)) == "echo: hello"
