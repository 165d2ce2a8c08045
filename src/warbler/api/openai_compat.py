"""The OpenAI-compatible API at ``/v1``: any OpenAI client can talk to a Warbler bot.

``base_url=https://chat.example.com/v1``, ``api_key=<a Warbler API key with bots:use, or a
user's access token>``, ``model=<the bot's username>``. Answers carry the bot's citations in
an extra ``citations`` field (ignored by clients that don't know it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from warbler.ai.engine import AnswerEvent, Final, ToolActivity
from warbler.ai.openai_api import CompletionRequest, OpenAICompat
from warbler.ai.providers.base import StreamReset, TextDelta
from warbler.api.deps import Auth, Svc
from warbler.clock import utcnow
from warbler.errors import InvalidRequest
from warbler.ids import new_id

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class ChatCompletionBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # clients send many fields a bot ignores

    model: str = Field(min_length=1, max_length=200)
    messages: list[dict[str, Any]]
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=200_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=200_000)
    n: int | None = Field(None, ge=1, le=1)
    tools: list[dict[str, Any]] | None = None


def _citations(final: Final) -> list[dict[str, Any]]:
    return [c.as_dict() for c in final.citations]


def _usage(final: Final) -> dict[str, int]:
    return {
        "prompt_tokens": final.usage.prompt_tokens,
        "completion_tokens": final.usage.completion_tokens,
        "total_tokens": final.usage.total_tokens,
    }


def _warbler(final: Final) -> dict[str, Any]:
    return {
        "status": final.status,
        "provider": final.provider,
        "handoff": final.handoff,
        "curated_answer_id": final.curated_answer_id,
    }


async def _first(events: AsyncIterator[AnswerEvent]) -> AnswerEvent:
    """Take the first event now, so a quota or validation error becomes an HTTP error
    instead of a broken stream."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        raise InvalidRequest("the bot produced no answer") from None


@router.get("/models")
async def list_models(principal: Auth, services: Svc) -> dict[str, Any]:
    bots = await OpenAICompat(services).models(principal)
    return {
        "object": "list",
        "data": [
            {
                "id": b.id,
                "object": "model",
                "created": b.created,
                "owned_by": "warbler",
                "name": b.name,
            }
            for b in bots
        ],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionBody, principal: Auth, services: Svc
) -> dict[str, Any] | StreamingResponse:
    if body.tools:
        raise InvalidRequest(
            "client-side tools are not supported: configure tools on the bot",
            details={"field": "tools"},
        )
    request = CompletionRequest(
        model=body.model,
        messages=body.messages,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
    )
    model, events = await OpenAICompat(services).complete(principal, request)
    first = await _first(events)
    completion_id = f"chatcmpl-{new_id()}"
    created = int(utcnow().timestamp())
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        chunks = _stream(first, events, completion_id, created, model, include_usage)
        return StreamingResponse(
            chunks,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    final = await _collect(first, events)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": final.text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(final),
        "citations": _citations(final),
        "warbler": _warbler(final),
    }


async def _collect(first: AnswerEvent, events: AsyncIterator[AnswerEvent]) -> Final:
    if isinstance(first, Final):
        return first
    async for event in events:
        if isinstance(event, Final):
            return event
    raise InvalidRequest("the bot produced no answer")


async def _stream(
    first: AnswerEvent,
    events: AsyncIterator[AnswerEvent],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})

    async def all_events() -> AsyncIterator[AnswerEvent]:
        yield first
        async for event in events:
            yield event

    async for event in all_events():
        if isinstance(event, TextDelta) and event.text:
            yield chunk({"content": event.text})
        elif isinstance(event, StreamReset):
            # Text already sent cannot be taken back: tell Warbler-aware clients to clear it.
            yield chunk({}, warbler={"reset": True, "reason": event.reason})
        elif isinstance(event, ToolActivity):
            yield chunk({}, warbler={"tool": event.name, "ok": event.ok})
        elif isinstance(event, Final):
            yield chunk({}, "stop", citations=_citations(event), warbler=_warbler(event))
            if include_usage:
                body = {
                    "id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": [], "usage": _usage(event),
                }  # fmt: skip
                yield b"data: " + orjson.dumps(body) + b"\n\n"
    yield b"data: [DONE]\n\n"
