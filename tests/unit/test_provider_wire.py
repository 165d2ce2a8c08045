"""Reading vendors' wire formats: SSE framing, chunk quirks, Retry-After, key scrubbing."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from warbler.ai.providers.base import ChatMessage, ChatRequest, ProviderUnavailable
from warbler.ai.providers.openai_compat import _Turn
from warbler.ai.providers.sse import SseDecoder, SseEvent
from warbler.ai.providers.transport import parse_retry_after, scrub


def decode(text: str) -> list[SseEvent]:
    decoder = SseDecoder()
    events = [e for line in text.split("\n") if (e := decoder.feed(line)) is not None]
    last = decoder.flush()
    return events + ([last] if last else [])


def test_sse_comments_blank_lines_and_multiline_data() -> None:
    events = decode(
        ": keep-alive\n\n"
        'data: {"a":\n'
        "data: 1}\n\n"
        "\n\n"
        "event: message_stop\r\n"
        'data: {"type": "message_stop"}\r\n\r\n'
        "id: 7\nretry: 100\n"
        "data: [DONE]\n"
    )
    assert events == [
        SseEvent(None, '{"a":\n1}'),
        SseEvent("message_stop", '{"type": "message_stop"}'),
        SseEvent(None, "[DONE]"),
    ]


def test_sse_tolerates_missing_blank_lines_between_events() -> None:
    assert decode('data: {"n": 1}\ndata: {"n": 2}\ndata: [DONE]') == [
        SseEvent(None, '{"n": 1}'),
        SseEvent(None, '{"n": 2}'),
        SseEvent(None, "[DONE]"),
    ]


def chunk(delta: dict, finish: str | None = None, **extra: object) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def test_tool_call_fragments_without_an_index_are_assembled_by_id() -> None:
    turn = _Turn(model="m")
    turn.absorb_chunk(
        chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x"'}}]}), ()
    )
    turn.absorb_chunk(chunk({"tool_calls": [{"function": {"arguments": ": 1}"}}]}), ())
    turn.absorb_chunk(
        chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": {"y": 2}}}]}), ()
    )
    turn.absorb_chunk(chunk({}, "stop"), ())
    calls = turn.tool_calls(())
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {"y": 2}),
    ]
    done = turn.finish(ChatRequest("m", (ChatMessage("user", "hi"),)), "p")
    assert done.finish_reason == "tool_calls"  # Ollama says "stop" next to tool calls


def test_content_in_the_finishing_chunk_is_kept() -> None:
    turn = _Turn(model="m")
    assert turn.absorb_chunk(chunk({"content": "last words"}, "length"), ()) == "last words"
    assert turn.finish(ChatRequest("m", ()), "p").finish_reason == "length"


def test_malformed_tool_arguments_are_a_retryable_failure() -> None:
    turn = _Turn(model="m")
    turn.absorb_chunk(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{oops"}}
                ]
            }
        ),
        (),
    )
    with pytest.raises(ProviderUnavailable) as caught:
        turn.tool_calls(())
    assert caught.value.retryable


def test_an_error_object_inside_the_stream_is_unavailable_without_the_key() -> None:
    turn = _Turn(model="m")
    with pytest.raises(ProviderUnavailable) as caught:
        turn.absorb_chunk(
            {"error": {"message": "overloaded for sk-abc-0123456789"}}, ("sk-abc-0123456789",)
        )
    assert "overloaded" in str(caught.value) and "0123456789" not in str(caught.value)


def test_retry_after_in_milliseconds_seconds_and_http_dates() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert parse_retry_after(httpx.Headers({"retry-after": "3"})) == 3
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (parse_retry_after(httpx.Headers({"retry-after": when})) or 0) <= 30
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers()) is None


def test_scrub_masks_the_key_and_key_shaped_tokens() -> None:
    text = "bad key sk-live-SECRETSECRET and custom-token-xyz, also sk-proj-abcdefgh123"
    out = scrub(text, ["custom-token-xyz"])
    assert "SECRETSECRET" not in out and "custom-token-xyz" not in out and "abcdefgh123" not in out
    assert out.startswith("bad key ***")
