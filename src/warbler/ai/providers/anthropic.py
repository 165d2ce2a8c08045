"""Anthropic's Messages API over httpx (``x-api-key``, ``anthropic-version: 2023-06-01``).

The chat is reshaped the way the API wants it: system prompts go to ``system``, turns
alternate user/assistant (neighbours of one role are merged into one turn of content blocks),
the assistant's tool calls are ``tool_use`` blocks and tool results are ``tool_result``
blocks in the next user turn. Extended-thinking blocks in the answer are skipped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from warbler.ai import tokens
from warbler.ai.providers.base import (
    ChatMessage,
    ChatRequest,
    Done,
    FinishReason,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallsReady,
    Usage,
)
from warbler.ai.providers.openai_compat import HttpProvider, parse_arguments
from warbler.ai.providers.sse import SseDecoder
from warbler.ai.providers.transport import (
    Deadline,
    bounded,
    next_line,
    open_response,
    scrub,
    transport_error,
)

log = logging.getLogger("warbler.ai.providers")

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens; this bounds an unbounded request

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider(HttpProvider):
    """The Messages API over httpx, streamed (or not: ``ProviderConfig.stream``)."""

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(
            m.content for m in request.messages if m.role == "system" and m.content
        )
        body: dict[str, Any] = {
            "model": request.model or self.config.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": wire_messages(request.messages),
            "stream": stream,
        }
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        for key, value in self.config.extra_body.items():
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "application/json", "anthropic-version": API_VERSION}
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        headers.update(self.config.headers)
        return headers

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        streaming = self.config.stream
        deadline = Deadline(
            self.config.request_timeout(self._settings), self.config.idle_timeout(self._settings)
        )
        started = time.monotonic()
        response = await open_response(
            self._client,
            f"{self.config.endpoint}/v1/messages",
            body=self.build_body(request, stream=streaming),
            headers=self._headers(),
            deadline=deadline,
            stream=streaming,
            outbound=self._outbound,
            secrets=self.secrets,
        )
        turn = _Turn(model=request.model or self.config.model)
        try:
            if streaming:
                async for event in self._read_stream(response, deadline, turn):
                    yield event
            else:
                try:
                    raw = await bounded(response.aread(), deadline, idle=False)
                    body = json.loads(raw)
                except httpx.HTTPError as exc:
                    raise transport_error(exc, self.secrets) from None
                except ValueError:
                    raise ProviderUnavailable("the provider's answer is not JSON") from None
                turn.absorb_message(body)
                if turn.text:
                    yield TextDelta(turn.text)
        finally:
            await response.aclose()
        done = turn.finish(request, self.name)
        log.debug(
            "provider %s answered: model=%s finish=%s tokens=%d+%d in %.2fs",
            self.name,
            done.model,
            done.finish_reason,
            done.usage.prompt_tokens,
            done.usage.completion_tokens,
            time.monotonic() - started,
        )
        if turn.calls:
            yield ToolCallsReady(turn.tool_calls())
        yield done

    async def _read_stream(
        self, response: httpx.Response, deadline: Deadline, turn: _Turn
    ) -> AsyncIterator[StreamEvent]:
        decoder = SseDecoder()
        lines = response.aiter_lines()
        while not turn.ended:
            try:
                line = await next_line(lines, deadline)
            except (httpx.HTTPError, ProviderTimeout) as exc:
                if turn.stop_reason is not None:
                    break  # complete answer; only message_stop was lost
                if isinstance(exc, ProviderTimeout):
                    raise
                raise transport_error(exc, self.secrets) from None
            event = decoder.feed(line) if line is not None else decoder.flush()
            if event is not None:
                try:
                    data = json.loads(event.data)
                except ValueError:
                    raise ProviderUnavailable(
                        "the provider sent an event that is not JSON"
                    ) from None
                text = turn.absorb_event(data, self.secrets)
                if text:
                    yield TextDelta(text)
            if line is None:
                break
        if turn.stop_reason is None:
            raise ProviderUnavailable("the stream ended before the answer finished")


@dataclass
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    json: str = ""
    input: dict[str, Any] | None = None


@dataclass
class _Turn:
    model: str
    text: str = ""
    blocks: dict[int, _Block] = field(default_factory=dict)
    stop_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ended: bool = False

    @property
    def calls(self) -> list[_Block]:
        return [self.blocks[i] for i in sorted(self.blocks) if self.blocks[i].kind == "tool_use"]

    def absorb_event(self, data: Any, secrets: tuple[str, ...]) -> str:
        if not isinstance(data, dict):
            return ""
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message") or {}
            if message.get("model"):
                self.model = str(message["model"])
            self._absorb_usage(message.get("usage"))
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            self.blocks[int(data.get("index", len(self.blocks)))] = _Block(
                kind=str(block.get("type", "")),
                id=str(block.get("id", "")),
                name=str(block.get("name", "")),
                input=block.get("input") or None,
            )
            if block.get("type") == "text" and block.get("text"):
                self.text += block["text"]
                return str(block["text"])
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            current = self.blocks.get(int(data.get("index", -1)))
            if delta.get("type") == "text_delta" and delta.get("text"):
                self.text += delta["text"]
                return str(delta["text"])
            if delta.get("type") == "input_json_delta" and current is not None:
                current.json += delta.get("partial_json") or ""
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            if delta.get("stop_reason"):
                self.stop_reason = str(delta["stop_reason"])
            self._absorb_usage(data.get("usage"))
        elif kind == "message_stop":
            self.ended = True
            self.stop_reason = self.stop_reason or "end_turn"
        elif kind == "error":
            raise stream_error(data, secrets)
        return ""

    def absorb_message(self, body: Any) -> None:
        if not isinstance(body, dict) or body.get("type") != "message":
            raise ProviderUnavailable("unexpected answer from the provider")
        if body.get("model"):
            self.model = str(body["model"])
        self._absorb_usage(body.get("usage"))
        for index, block in enumerate(body.get("content") or []):
            if block.get("type") == "text":
                self.text += str(block.get("text", ""))
            elif block.get("type") == "tool_use":
                self.blocks[index] = _Block(
                    kind="tool_use",
                    id=str(block.get("id", "")),
                    name=str(block.get("name", "")),
                    input=block.get("input") or {},
                )
        self.stop_reason = str(body.get("stop_reason") or "end_turn")
        self.ended = True

    def _absorb_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        # Cached prompt tokens are reported apart from input_tokens; all of them were read.
        prompt = [
            usage.get(k)
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ]
        if any(isinstance(v, int) and v for v in prompt):
            self.prompt_tokens = sum(v for v in prompt if isinstance(v, int))
        if isinstance(usage.get("output_tokens"), int):
            self.completion_tokens = usage["output_tokens"]  # cumulative in message_delta

    def tool_calls(self) -> tuple[ToolCall, ...]:
        out = []
        for index, block in enumerate(self.calls):
            if not block.name:
                raise ProviderUnavailable("the model sent a tool call without a name")
            if block.json:
                arguments = parse_arguments(block.name, block.json)
            else:
                arguments = dict(block.input or {})
            out.append(
                ToolCall(id=block.id or f"toolu_{index}", name=block.name, arguments=arguments)
            )
        return tuple(out)

    def finish(self, request: ChatRequest, provider: str) -> Done:
        reason = _STOP.get(self.stop_reason or "end_turn", "stop")
        if self.calls:
            reason = "tool_calls"
        extra: dict[str, Any] = {"provider": provider}
        if self.prompt_tokens is None or self.completion_tokens is None:
            extra["usage_estimated"] = True
        completion = self.text + "".join(b.name + b.json for b in self.calls)
        usage = Usage(
            self.prompt_tokens
            if self.prompt_tokens is not None
            else tokens.count_messages(request.messages, self.model),
            self.completion_tokens
            if self.completion_tokens is not None
            else tokens.count_text(completion, self.model),
        )
        return Done(usage=usage, finish_reason=reason, model=self.model, extra=extra)


def stream_error(data: dict[str, Any], secrets: tuple[str, ...]) -> ProviderError:
    """An ``event: error`` inside a stream (overloaded, rate limited, ...)."""
    error = data.get("error") or {}
    kind = str(error.get("type", "api_error"))
    message = scrub(str(error.get("message", kind)), secrets)[:500]
    text = f"mid-stream {kind}: {message}"
    if kind == "rate_limit_error":
        return RateLimited(text, status=429)
    if kind == "overloaded_error":
        return ProviderUnavailable(text, status=529)
    if kind in ("invalid_request_error", "authentication_error", "permission_error"):
        return ProviderRejected(text)
    return ProviderUnavailable(text)


def wire_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """Messages as alternating user/assistant turns of content blocks (systems left out)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            role = "user"
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content,
                }
            )
        else:
            role = message.role
            if message.content:  # the API refuses empty text blocks
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    # Tool results must come first in their user turn.
    for turn in turns:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return turns
