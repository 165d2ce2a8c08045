"""The Anthropic Messages provider against a fake Anthropic API on a real socket."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.fakes.anthropic_wire import FakeAnthropic, Reply
from warbler.ai.providers.anthropic import AnthropicProvider
from warbler.ai.providers.base import (
    ChatMessage,
    ChatRequest,
    Done,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallsReady,
    ToolSpec,
)
from warbler.ai.providers.config import ProviderConfig
from warbler.config import Settings

KEY = "sk-ant-api03-SECRET-0123456789abcdef"
WEATHER = ToolSpec(
    name="get_weather",
    description="Weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


@pytest.fixture
def ai_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, ai_idle_timeout_seconds=0.4, ai_request_timeout_seconds=3.0)


def provider_for(fake: FakeAnthropic, settings: Settings, **config: Any) -> AnthropicProvider:
    values: dict[str, Any] = {"kind": "anthropic", "name": "claude", "base_url": fake.base_url}
    values.update(config)
    values.setdefault("api_key", KEY)
    values.setdefault("model", "claude-fake")
    return AnthropicProvider(ProviderConfig(**values), settings)


def ask(text: str = "hello", **extra: Any) -> ChatRequest:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", text))
    return ChatRequest(model="", messages=messages, **extra)


async def collect(provider: AnthropicProvider, request: ChatRequest) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    try:
        async for event in provider.stream(request):
            events.append(event)
    finally:
        await provider.aclose()
    return events


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_streamed_answer_with_usage_from_start_and_delta(
    fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    fake_anthropic.script(Reply(text="Hello, 你好世界!", usage=(21, 6), reasoning="hmm"))
    events = await collect(provider_for(fake_anthropic, ai_settings), ask(max_tokens=200))

    assert text_of(events) == "Hello, 你好世界!"  # the thinking block is not shown
    assert len([e for e in events if isinstance(e, TextDelta)]) > 3
    done = events[-1]
    assert isinstance(done, Done)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (21, 6)
    assert done.finish_reason == "stop" and done.model == "claude-fake"
    sent = fake_anthropic.requests[0]
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.body["system"] == "Be brief."
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]}
    ]
    assert sent.body["max_tokens"] == 200 and sent.body["stream"] is True


async def test_non_streamed_answer(fake_anthropic: FakeAnthropic, ai_settings: Settings) -> None:
    fake_anthropic.script(Reply(text="Whole.", usage=(4, 2)))
    events = await collect(provider_for(fake_anthropic, ai_settings, stream=False), ask())
    assert events[0] == TextDelta("Whole.")
    assert isinstance(events[-1], Done) and events[-1].usage.total_tokens == 6


async def test_tool_use_blocks_become_tool_calls(
    fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    fake_anthropic.script(
        Reply(
            text="Checking.",
            tool_calls=[("get_weather", {"city": "上海"}), ("get_weather", {"city": "Paris"})],
        )
    )
    events = await collect(provider_for(fake_anthropic, ai_settings), ask(tools=(WEATHER,)))

    ready = next(e for e in events if isinstance(e, ToolCallsReady))
    assert [c.arguments for c in ready.calls] == [{"city": "上海"}, {"city": "Paris"}]
    assert ready.calls[0].id != ready.calls[1].id
    assert text_of(events) == "Checking."
    assert isinstance(events[-1], Done) and events[-1].finish_reason == "tool_calls"
    assert fake_anthropic.requests[0].body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER.parameters,
        }
    ]


async def test_non_streamed_tool_use(fake_anthropic: FakeAnthropic, ai_settings: Settings) -> None:
    fake_anthropic.script(Reply(tool_calls=[("get_weather", {"city": "Oslo"})]))
    events = await collect(provider_for(fake_anthropic, ai_settings, stream=False), ask())
    assert events[0] == ToolCallsReady((ToolCall("toolu_1_0", "get_weather", {"city": "Oslo"}),))


async def test_tool_results_go_back_as_tool_result_blocks_in_a_user_turn(
    fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    a = ToolCall("toolu_1", "get_weather", {"city": "上海"})
    b = ToolCall("toolu_2", "get_weather", {"city": "Paris"})
    messages = (
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather?"),
        ChatMessage("assistant", "Checking.", tool_calls=(a, b)),
        ChatMessage("tool", "晴, 25°C", tool_call_id="toolu_1", name="get_weather"),
        ChatMessage("tool", "rain", tool_call_id="toolu_2", name="get_weather"),
        ChatMessage("system", "Answer in one line."),
    )
    await collect(provider_for(fake_anthropic, ai_settings), ChatRequest("", messages))

    body = fake_anthropic.requests[0].body
    assert body["system"] == "Be brief.\n\nAnswer in one line."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "上海"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "晴, 25°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rain"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RateLimited), (529, ProviderUnavailable), (500, ProviderUnavailable)],
)
async def test_overload_and_rate_limits_are_retryable(
    fake_anthropic: FakeAnthropic, ai_settings: Settings, status: int, error: type[ProviderError]
) -> None:
    fake_anthropic.script(Reply(status=status, retry_after=2))
    with pytest.raises(error) as caught:
        await collect(provider_for(fake_anthropic, ai_settings), ask())
    assert caught.value.retryable and caught.value.status == status
    assert caught.value.retry_after == 2


async def test_bad_request_is_rejected_with_the_vendors_message(
    fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    fake_anthropic.script(Reply(status=400, error_message="max_tokens: must be positive"))
    with pytest.raises(ProviderRejected, match="max_tokens: must be positive"):
        await collect(provider_for(fake_anthropic, ai_settings), ask())


async def test_overloaded_event_mid_stream_is_unavailable(
    fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    fake_anthropic.script(Reply(text="one two three", stream_error_after_chunks=1))
    with pytest.raises(ProviderUnavailable, match="overloaded"):
        await collect(provider_for(fake_anthropic, ai_settings), ask())


async def test_cut_stream_and_silence_end_in_bounded_time(
    fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    fake_anthropic.script(Reply(text="one two three", cut_after_chunks=1), Reply(hang_seconds=30))
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await collect(provider_for(fake_anthropic, ai_settings), ask())
    with pytest.raises(ProviderTimeout):
        await collect(provider_for(fake_anthropic, ai_settings), ask())
    assert time.monotonic() - started < 3


async def test_usage_is_estimated_when_missing(
    fake_anthropic: FakeAnthropic, ai_settings: Settings
) -> None:
    fake_anthropic.script(Reply(text="短短的回答", omit_usage=True))
    events = await collect(provider_for(fake_anthropic, ai_settings), ask("请简单回答"))
    done = events[-1]
    assert isinstance(done, Done) and done.extra["usage_estimated"] is True
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0


async def test_the_key_is_never_in_errors_or_logs(
    fake_anthropic: FakeAnthropic, ai_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_anthropic.script(
        Reply(status=401, error_message=f"invalid x-api-key {KEY}"), Reply(text="ok")
    )
    provider = provider_for(fake_anthropic, ai_settings)
    with pytest.raises(ProviderRejected) as caught:
        await collect(provider, ask())
    await collect(provider_for(fake_anthropic, ai_settings), ask())
    seen = f"{caught.value} {caught.value!r} {provider!r} {provider.config!r} {caplog.text}"
    assert "invalid x-api-key" in seen
    assert KEY not in seen and "SECRET" not in seen
