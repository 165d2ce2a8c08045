"""The OpenAI-compatible provider against a fake vendor on a real socket."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.fakes.openai_wire import FakeOpenAI, Reply
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
from warbler.ai.providers.openai_compat import OpenAICompatProvider
from warbler.config import Settings
from warbler.security.outbound import OutboundPolicy

KEY = "sk-test-SECRET-0123456789abcdef"
SEARCH = ToolSpec(
    name="search_kb",
    description="Search the knowledge base",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}},
)


@pytest.fixture
def ai_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, ai_idle_timeout_seconds=0.4, ai_request_timeout_seconds=3.0, ai_max_retries=0
    )


def provider_for(fake: FakeOpenAI, settings: Settings, **config: Any) -> OpenAICompatProvider:
    values: dict[str, Any] = {"kind": "openai", "name": "fake", "base_url": fake.base_url}
    values.update(config)
    values.setdefault("api_key", KEY)
    values.setdefault("model", "fake-model")
    return OpenAICompatProvider(ProviderConfig(**values), settings)


def ask(text: str = "hello", **extra: Any) -> ChatRequest:
    messages = (ChatMessage("system", "You are helpful."), ChatMessage("user", text))
    return ChatRequest(model="", messages=messages, **extra)


async def collect(provider: OpenAICompatProvider, request: ChatRequest) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    try:
        async for event in provider.stream(request):
            events.append(event)
    finally:
        await provider.aclose()
    return events


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_streamed_answer_arrives_in_pieces_with_the_vendors_usage(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(text="Hello there, how can I help?", usage=(17, 7)))
    events = await collect(provider_for(fake_openai, ai_settings), ask())

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3
    assert text_of(events) == "Hello there, how can I help?"
    done = events[-1]
    assert isinstance(done, Done)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (17, 7)
    assert done.finish_reason == "stop"
    assert done.model == "fake-model"
    assert "usage_estimated" not in done.extra
    sent = fake_openai.chat_requests[0]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"][0] == {"role": "system", "content": "You are helpful."}


async def test_non_streamed_answer_comes_as_one_delta(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(text="All at once.", usage=(5, 3)))
    events = await collect(provider_for(fake_openai, ai_settings, stream=False), ask())

    assert events[0] == TextDelta("All at once.")
    assert isinstance(events[-1], Done) and events[-1].usage.total_tokens == 8
    assert fake_openai.chat_requests[0].body["stream"] is False


async def test_streamed_tool_call_fragments_become_calls_with_parsed_arguments(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(
        Reply(
            text="Let me check.",
            tool_calls=[
                ("search_kb", {"query": "退款政策 refund policy", "top": 3}),
                ("get_time", {"tz": "Asia/Shanghai"}),
            ],
        )
    )
    events = await collect(provider_for(fake_openai, ai_settings), ask(tools=(SEARCH,)))

    ready = [e for e in events if isinstance(e, ToolCallsReady)]
    assert len(ready) == 1
    calls = ready[0].calls
    assert [c.name for c in calls] == ["search_kb", "get_time"]
    assert calls[0].arguments == {"query": "退款政策 refund policy", "top": 3}
    assert calls[1].arguments == {"tz": "Asia/Shanghai"}
    assert calls[0].id != calls[1].id
    assert text_of(events) == "Let me check."
    assert isinstance(events[-1], Done) and events[-1].finish_reason == "tool_calls"
    tools = fake_openai.chat_requests[0].body["tools"]
    assert tools == [
        {
            "type": "function",
            "function": {
                "name": "search_kb",
                "description": "Search the knowledge base",
                "parameters": SEARCH.parameters,
            },
        }
    ]


async def test_non_streamed_tool_calls_are_parsed(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(tool_calls=[("search_kb", {"query": "hours"})]))
    events = await collect(provider_for(fake_openai, ai_settings, stream=False), ask())

    assert events[0] == ToolCallsReady((ToolCall("call_1_0", "search_kb", {"query": "hours"}),))
    assert isinstance(events[-1], Done) and events[-1].finish_reason == "tool_calls"


async def test_tool_round_trip_is_sent_in_the_openai_shape(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    call = ToolCall("call_9", "search_kb", {"query": "营业时间"})
    messages = (
        ChatMessage("user", "When are you open?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "9:00-18:00", tool_call_id="call_9", name="search_kb"),
    )
    await collect(provider_for(fake_openai, ai_settings), ChatRequest("", messages))

    sent = fake_openai.chat_requests[0].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "search_kb", "arguments": '{"query": "营业时间"}'},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_9", "content": "9:00-18:00"}


async def test_usage_is_estimated_when_the_vendor_sends_none(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(text="An answer of several words.", omit_usage=True))
    events = await collect(provider_for(fake_openai, ai_settings), ask("How much does it cost?"))

    done = events[-1]
    assert isinstance(done, Done)
    assert done.extra["usage_estimated"] is True
    assert 10 < done.usage.prompt_tokens < 40
    assert 4 <= done.usage.completion_tokens <= 10


async def test_vendor_quirks_reasoning_comments_and_usage_in_every_chunk(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(
        Reply(
            text="The answer is 42.",
            reasoning="Let me think step by step",
            sse_comments=True,
            usage_every_chunk=True,
            usage=(9, 5),
        )
    )
    events = await collect(provider_for(fake_openai, ai_settings), ask())

    assert text_of(events) == "The answer is 42."
    assert isinstance(events[-1], Done) and events[-1].usage.total_tokens == 14


async def test_chinese_text_round_trips_intact(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    answer = "您好！我们的营业时间是周一至周五 9:00-18:00，欢迎来电。"
    fake_openai.script(Reply(text=answer, chunks_per_word=1))
    events = await collect(provider_for(fake_openai, ai_settings), ask("你们几点开门？"))

    assert text_of(events) == answer
    assert len([e for e in events if isinstance(e, TextDelta)]) > 10
    assert fake_openai.chat_requests[0].body["messages"][1]["content"] == "你们几点开门？"


async def test_rate_limit_is_typed_with_the_retry_after(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=429, retry_after=0.25))
    with pytest.raises(RateLimited) as caught:
        await collect(provider_for(fake_openai, ai_settings), ask())
    assert caught.value.retryable
    assert caught.value.status == 429
    assert caught.value.retry_after == pytest.approx(0.25)


async def test_server_error_is_typed_unavailable(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(status=500))
    with pytest.raises(ProviderUnavailable) as caught:
        await collect(provider_for(fake_openai, ai_settings), ask())
    assert caught.value.status == 500 and caught.value.retryable


async def test_bad_key_is_rejected_with_the_vendors_message_but_not_the_key(
    ai_settings: Settings,
) -> None:
    with FakeOpenAI(api_key="sk-the-right-one-000000") as fake:
        fake.script(Reply(status=401, error_message=f"Incorrect API key provided: {KEY}."))
        with pytest.raises(ProviderRejected) as caught:
            await collect(provider_for(fake, ai_settings), ask())
    assert not caught.value.retryable
    assert caught.value.status == 401
    assert "Incorrect API key provided" in caught.value.message
    assert KEY not in str(caught.value)


async def test_stream_cut_in_the_middle_is_unavailable_after_the_first_deltas(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(text="one two three four five six", cut_after_chunks=2))
    provider = provider_for(fake_openai, ai_settings)
    seen: list[StreamEvent] = []
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        async for event in provider.stream(ask()):
            seen.append(event)
    await provider.aclose()
    assert text_of(seen) == "one two "
    assert time.monotonic() - started < 3


async def test_a_stream_that_ends_without_finishing_is_unavailable(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    # Every content chunk sent, then the connection closes before finish_reason.
    fake_openai.script(Reply(text="almost done", cut_after_chunks=99))
    with pytest.raises(ProviderUnavailable):
        await collect(provider_for(fake_openai, ai_settings), ask())


async def test_silent_server_times_out_within_the_idle_timeout(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(hang_seconds=30))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await collect(provider_for(fake_openai, ai_settings), ask())
    assert 0.35 < time.monotonic() - started < 2.5  # the hang is 30 s


async def test_stall_between_chunks_times_out_within_the_idle_timeout(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    fake_openai.script(Reply(text="a b c d", hang_after_chunks=2, hang_seconds=30))
    provider = provider_for(fake_openai, ai_settings)
    seen: list[StreamEvent] = []
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        async for event in provider.stream(ask()):
            seen.append(event)
    await provider.aclose()
    assert text_of(seen) == "a b "
    assert time.monotonic() - started < 2.5  # the stall is 30 s


async def test_slow_trickle_is_cut_by_the_total_timeout(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    # Every chunk is within the idle timeout, but the whole answer would take 6 s.
    fake_openai.script(Reply(text=" ".join(["word"] * 30), chunk_delay=0.2))
    provider = provider_for(fake_openai, ai_settings, timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        await collect(provider, ask())
    assert "1 s" in caught.value.message
    assert time.monotonic() - started < 3


async def test_refused_connection_is_unavailable(ai_settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ProviderConfig("openai", "down", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY)
    with pytest.raises(ProviderUnavailable):
        await collect(OpenAICompatProvider(config, ai_settings), ask())


async def test_outbound_policy_refuses_a_private_provider_url(
    fake_openai: FakeOpenAI, ai_settings: Settings
) -> None:
    config = ProviderConfig("openai", "x", base_url=fake_openai.base_url, api_key=KEY)
    provider = OpenAICompatProvider(config, ai_settings, outbound=OutboundPolicy())
    with pytest.raises(ProviderRejected, match="not allowed"):
        await collect(provider, ask())
    assert fake_openai.requests == []


async def test_the_api_key_never_appears_in_errors_reprs_or_logs(
    fake_openai: FakeOpenAI, ai_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.script(
        Reply(status=400, error_message=f"bad request for key {KEY}"),
        Reply(status=500, error_message=f"upstream said {KEY}"),
        Reply(text="x y z", cut_after_chunks=1),
        Reply(hang_seconds=30),
        Reply(text="fine"),
    )
    config = ProviderConfig(
        "openai", "fake", base_url=fake_openai.base_url, api_key=KEY, headers={"x-org": KEY}
    )
    errors: list[ProviderError] = []
    for _ in range(5):
        provider = OpenAICompatProvider(config, ai_settings)
        try:
            await collect(provider, ask())
        except ProviderError as exc:
            errors.append(exc)
    assert len(errors) == 4
    seen = " ".join(f"{e!s} {e!r} {e.message}" for e in errors)
    seen += repr(config) + repr(OpenAICompatProvider(config, ai_settings)) + caplog.text
    assert "bad request for key" in seen  # the vendor's message is kept ...
    assert KEY not in seen  # ... without the key
    assert "SECRET-0123" not in seen
