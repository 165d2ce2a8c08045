"""Any OpenAI-compatible chat completions endpoint: OpenAI, DeepSeek, Qwen (DashScope),
Moonshot, Zhipu, vLLM, Ollama, llama.cpp.

Vendors differ in small ways this reader absorbs: DeepSeek/Qwen stream ``reasoning_content``
(ignored: only the answer is shown), some send ``usage`` in every chunk (the last one wins),
some put ``finish_reason`` in a chunk with an empty delta or end without ``[DONE]``, some omit
the tool call ``index``. A stream that ends before any ``finish_reason`` was cut.
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
    ProviderTimeout,
    ProviderUnavailable,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallsReady,
    Usage,
)
from warbler.ai.providers.config import ProviderConfig
from warbler.ai.providers.sse import SseDecoder
from warbler.ai.providers.transport import (
    Deadline,
    bounded,
    error_message,
    next_line,
    open_response,
    scrub,
    transport_error,
)
from warbler.config import Settings
from warbler.security.outbound import OutboundPolicy

log = logging.getLogger("warbler.ai.providers")

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "sensitive": "content_filter",  # Zhipu
    "network_error": "error",  # Zhipu: the model failed mid-answer
    "insufficient_system_resource": "error",  # DeepSeek
}


def make_client(config: ProviderConfig, settings: Settings) -> httpx.AsyncClient:
    """A client for one provider: connection reuse, no redirects, no ambient auth."""
    total = config.request_timeout(settings)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(total, connect=min(total, 10.0)),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        follow_redirects=False,
    )


class HttpProvider:
    """What every vendor provider shares: its config, one pooled client, key scrubbing."""

    def __init__(
        self,
        config: ProviderConfig,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.config = config
        self.name = config.label
        self._settings = settings
        self._outbound = outbound
        self._own_client = client is None
        self._client = client or make_client(config, settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.config.endpoint!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.config.api_key, *self.config.headers.values())

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


class OpenAICompatProvider(HttpProvider):
    """Chat completions over httpx, streamed (or not: ``ProviderConfig.stream``)."""

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model or self.config.model,
            "messages": [_wire_message(m) for m in request.messages],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        for key, value in self.config.extra_body.items():
            if value is None:  # lets a config drop a field its vendor refuses
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "application/json, text/event-stream"}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
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
            f"{self.config.endpoint}/chat/completions",
            body=self.build_body(request, stream=streaming),
            headers=self._headers(),
            deadline=deadline,
            stream=streaming,
            outbound=self._outbound,
            secrets=self.secrets,
        )
        state = _Turn(model=request.model or self.config.model)
        try:
            if streaming:
                async for event in self._read_stream(response, deadline, state):
                    yield event
            else:
                raw = await self._read_body(response, deadline)
                state.absorb_message(raw, self.secrets)
                if state.text:
                    yield TextDelta(state.text)
        finally:
            await response.aclose()
        done = state.finish(request, self.name)
        log.debug(
            "provider %s answered: model=%s finish=%s tokens=%d+%d in %.2fs",
            self.name,
            done.model,
            done.finish_reason,
            done.usage.prompt_tokens,
            done.usage.completion_tokens,
            time.monotonic() - started,
        )
        if state.calls:
            yield ToolCallsReady(state.tool_calls(self.secrets))
        yield done

    async def _read_body(self, response: httpx.Response, deadline: Deadline) -> Any:
        try:
            raw = await bounded(response.aread(), deadline, idle=False)
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.secrets) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ProviderUnavailable("the provider's answer is not JSON") from None

    async def _read_stream(
        self, response: httpx.Response, deadline: Deadline, state: _Turn
    ) -> AsyncIterator[StreamEvent]:
        decoder = SseDecoder()
        lines = response.aiter_lines()
        while not state.ended:
            try:
                line = await next_line(lines, deadline)
            except (httpx.HTTPError, ProviderTimeout) as exc:
                if state.finish_reason is not None:
                    break  # the answer was complete; only the trailer ([DONE], usage) is lost
                if isinstance(exc, ProviderTimeout):
                    raise
                raise transport_error(exc, self.secrets) from None
            event = decoder.feed(line) if line is not None else decoder.flush()
            if event is not None:
                if event.data.strip() == "[DONE]":
                    state.ended = True
                    break
                try:
                    chunk = json.loads(event.data)
                except ValueError:
                    raise ProviderUnavailable(
                        "the provider sent a chunk that is not JSON"
                    ) from None
                text = state.absorb_chunk(chunk, self.secrets)
                if text:
                    yield TextDelta(text)
            if line is None:
                break
        if state.finish_reason is None:
            raise ProviderUnavailable("the stream ended before the answer finished")


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Turn:
    """What one answer has said so far."""

    model: str
    text: str = ""
    calls: dict[int, _Call] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    ended: bool = False

    def absorb_chunk(self, chunk: Any, secrets: tuple[str, ...]) -> str:
        """Take one streamed chunk in; return its new answer text."""
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("error"):
            message = scrub(error_message(chunk) or "error in stream", secrets)
            raise ProviderUnavailable(f"the provider failed mid-stream: {message}")
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = chunk["model"]
        self._absorb_usage(chunk.get("usage"))
        text = ""
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                text += content
            for fragment in delta.get("tool_calls") or []:
                self._absorb_fragment(fragment)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        self.text += text
        return text

    def absorb_message(self, body: Any, secrets: tuple[str, ...]) -> None:
        """Take a whole (non-streamed) answer in."""
        if not isinstance(body, dict) or not body.get("choices"):
            problem = scrub(error_message(body) or "no choices in the answer", secrets)
            raise ProviderUnavailable(f"unexpected answer from the provider: {problem}")
        if isinstance(body.get("model"), str) and body["model"]:
            self.model = body["model"]
        self._absorb_usage(body.get("usage"))
        choice = body["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            self.text = content
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            arguments = function.get("arguments")
            self.calls[index] = _Call(
                id=str(call.get("id") or f"call_{index}"),
                name=str(function.get("name") or ""),
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
            )
        self.finish_reason = choice.get("finish_reason") or "stop"
        self.ended = True

    def _absorb_usage(self, usage: Any) -> None:
        if isinstance(usage, dict) and (
            usage.get("prompt_tokens") is not None or usage.get("completion_tokens") is not None
        ):
            self.usage = Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )

    def _absorb_fragment(self, fragment: Any) -> None:
        if not isinstance(fragment, dict):
            return
        index = fragment.get("index")
        if not isinstance(index, int):
            # Vendors that omit the index: a new id starts a new call, else it continues.
            known = next((i for i, c in self.calls.items() if c.id == fragment.get("id")), None)
            if known is not None:
                index = known
            elif fragment.get("id") or not self.calls:
                index = len(self.calls)
            else:
                index = max(self.calls)
        call = self.calls.setdefault(index, _Call())
        if fragment.get("id"):
            call.id = str(fragment["id"])
        function = fragment.get("function") or {}
        if function.get("name"):
            call.name = str(function["name"])
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments += arguments
        elif isinstance(arguments, dict):  # a vendor that sends the object, not its text
            call.arguments += json.dumps(arguments, ensure_ascii=False)

    def tool_calls(self, secrets: tuple[str, ...]) -> tuple[ToolCall, ...]:
        out = []
        for index in sorted(self.calls):
            call = self.calls[index]
            if not call.name:
                raise ProviderUnavailable("the model sent a tool call without a name")
            arguments = parse_arguments(call.name, call.arguments)
            out.append(ToolCall(id=call.id or f"call_{index}", name=call.name, arguments=arguments))
        return tuple(out)

    def finish(self, request: ChatRequest, provider: str) -> Done:
        reason: FinishReason = _FINISH.get(self.finish_reason or "stop", "stop")
        if self.calls:
            reason = "tool_calls"  # Ollama and others say "stop" next to tool calls
        elif reason == "error" and not self.text:
            raise ProviderUnavailable(f"the model failed ({self.finish_reason})")
        extra: dict[str, Any] = {"provider": provider}
        usage = self.usage
        if usage is None:
            completion = self.text + "".join(c.name + c.arguments for c in self.calls.values())
            usage = Usage(
                tokens.count_messages(request.messages, self.model),
                tokens.count_text(completion, self.model),
            )
            extra["usage_estimated"] = True
        return Done(usage=usage, finish_reason=reason, model=self.model, extra=extra)


def parse_arguments(name: str, text: str) -> dict[str, Any]:
    """A tool call's streamed argument text as an object (empty text: no arguments).

    Malformed JSON is a retryable failure: the same model usually gets it right next time.
    """
    try:
        arguments = json.loads(text) if text.strip() else {}
    except ValueError:
        raise ProviderUnavailable(
            f"the model sent arguments for {name!r} that are not JSON"
        ) from None
    if not isinstance(arguments, dict):
        raise ProviderUnavailable(f"the model's arguments for {name!r} are not an object")
    return arguments


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": json.dumps(call.arguments, ensure_ascii=False),
                },
            }
            for call in message.tool_calls
        ]
    return out
