"""A fake OpenAI-compatible vendor on a real socket, scripted per request.

Usage::

    from tests.fakes.openai_wire import FakeOpenAI, Reply

    with FakeOpenAI() as fake:                   # or the ``fake_openai`` pytest fixture
        fake.base_url                            # "http://127.0.0.1:PORT/v1"
        fake.script(
            Reply(status=429, retry_after=0.1),  # first request: rate limited
            Reply(text="你好, world", usage=(12, 3)),
            Reply(tool_calls=[("search_kb", {"query": "refund"})]),
        )
        ...                                      # point a provider / the openai SDK at it
        fake.requests[0].path                    # "/v1/chat/completions"
        fake.requests[0].headers["authorization"]
        fake.requests[0].body["messages"]

Endpoints:
- ``POST /v1/chat/completions``: non-stream JSON, or with ``"stream": true`` SSE chunks
  (``data: {...}`` lines, then ``data: [DONE]``). The first chunk carries
  ``delta.role``; text follows one chunk per word (``Reply.chunks_per_word`` splits further);
  tool calls stream as ``delta.tool_calls`` fragments (first fragment: index, id, type,
  function.name, arguments ""; then argument pieces). ``finish_reason`` comes in its own chunk
  with an empty delta. With ``stream_options.include_usage`` a final chunk with
  ``choices: []`` and ``usage`` follows (``Reply.usage_every_chunk`` puts usage in every chunk).
- ``GET /v1/models``: ``FakeOpenAI(models=(...))``.
- ``POST /v1/embeddings``: deterministic hash-based unit vectors, ``FakeOpenAI(embedding_dim=)``
  or the request's ``dimensions``; the same text always gets the same vector.

Each model request consumes one queued ``Reply`` (see ``tests/fakes/_http.py`` for every field:
status/retry_after/error_message, chunk_delay, cut_after_chunks, hang_seconds +
hang_after_chunks, reasoning, sse_comments, omit_usage, finish_reason, hold). With nothing
queued, ``fake.responder(request) -> Reply`` is asked if set, else the default reply is
``"echo: <last user message>"``. ``FakeOpenAI(api_key="sk-...")`` answers 401 to any other
bearer token. ``fake.requests`` records every request; ``fake.wait_for_requests(n)`` blocks.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any

from tests.fakes._http import (
    Conn,
    FakeServer,
    RecordedRequest,
    Reply,
    count_words,
    last_user_text,
    retry_headers,
    split_chunks,
)

__all__ = ["FakeOpenAI", "RecordedRequest", "Reply", "fake_embedding"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}


def fake_embedding(text: str, dim: int) -> list[float]:
    """A deterministic unit vector for ``text`` (hash-seeded; not semantic)."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(v / 2**31 - 1.0 for v in struct.unpack("<8I", digest))
        counter += 1
    values = values[:dim]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


class FakeOpenAI(FakeServer):
    thread_name = "fake-openai"

    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("fake-model",),
        embedding_dim: int = 384,
        api_key: str | None = None,
    ) -> None:
        self.models = models
        self.embedding_dim = embedding_dim
        self.api_key = api_key
        self._calls = 0
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def handle(self, request: RecordedRequest, conn: Conn) -> None:
        if self.api_key is not None and request.headers.get("authorization") != (
            f"Bearer {self.api_key}"
        ):
            await _error(conn, 401, "Incorrect API key provided.", {})
            return
        path = request.path
        if request.method == "GET" and path.endswith("/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models
            ]
            await conn.send_json(200, {"object": "list", "data": data})
        elif request.method == "POST" and path.endswith("/embeddings"):
            await self._embeddings(request, conn)
        elif request.method == "POST" and path.endswith("/chat/completions"):
            await self._chat(request, conn, self.next_reply(request))
        else:
            await _error(conn, 404, f"Unknown path {path}", {})

    async def _embeddings(self, request: RecordedRequest, conn: Conn) -> None:
        body = request.body or {}
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        dim = int(body.get("dimensions") or self.embedding_dim)
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(str(t), dim)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(count_words(str(t)) for t in texts)
        await conn.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    async def _chat(self, request: RecordedRequest, conn: Conn, reply: Reply) -> None:
        body = request.body or {}
        if reply.hold is not None:
            await conn.wait_for(reply.hold)
        if reply.hang_seconds is not None and reply.hang_after_chunks is None:
            await conn.sleep(reply.hang_seconds)
        extra = retry_headers(reply)
        if reply.status != 200:
            await _error(conn, reply.status, reply.error_message, extra)
            return
        self._calls += 1
        n = self._calls
        model = reply.model or body.get("model") or self.models[0]
        text = reply.text
        if text is None:
            text = "" if reply.tool_calls else f"echo: {last_user_text(body.get('messages'))}"
        pieces = split_chunks(text, reply.chunks_per_word)
        calls = [(f"call_{n}_{i}", name, args) for i, (name, args) in enumerate(reply.tool_calls)]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        prompt_tokens = sum(
            count_words(m.get("content") if isinstance(m.get("content"), str) else "")
            for m in body.get("messages", [])
            if isinstance(m, dict)
        )
        usage = None
        if not reply.omit_usage:
            p, c = reply.usage or (prompt_tokens, len(pieces) + len(calls))
            usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        cid = f"chatcmpl-{n}"
        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": text if text or not calls else None,
            }
            if reply.reasoning:
                message["reasoning_content"] = reply.reasoning
            if calls:
                message["tool_calls"] = [
                    {
                        "id": cid_,
                        "type": "function",
                        "function": {
                            "name": name,
                            "arguments": json.dumps(args, ensure_ascii=False),
                        },
                    }
                    for cid_, name, args in calls
                ]
            out: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            }
            if usage is not None:
                out["usage"] = usage
            await conn.send_json(200, out, extra)
            return
        await _stream(conn, reply, body, cid, model, pieces, calls, finish, usage, extra)


async def _stream(
    conn: Conn,
    reply: Reply,
    body: dict[str, Any],
    cid: str,
    model: str,
    pieces: list[str],
    calls: list[tuple[str, str, dict[str, Any]]],
    finish: str,
    usage: dict[str, Any] | None,
    extra: dict[str, str],
) -> None:
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    await conn.start_stream(extra)
    sent = 0

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, choices: bool = True) -> str:
        data: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            if choices
            else [],
        }
        if reply.usage_every_chunk and usage is not None:
            data["usage"] = usage
        elif not choices:
            data["usage"] = usage
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def emit(event: str, content: bool = True) -> None:
        nonlocal sent
        if content:
            if reply.cut_after_chunks is not None and sent >= reply.cut_after_chunks:
                conn.cut()
            if reply.hang_after_chunks is not None and sent == reply.hang_after_chunks:
                await conn.sleep(reply.hang_seconds or 0)
        if reply.sse_comments:
            event = ": keep-alive\n\n" + event + "\n"
        await conn.write_chunk(event)
        if content:
            sent += 1
            if reply.chunk_delay:
                await conn.sleep(reply.chunk_delay)

    await emit(chunk({"role": "assistant", "content": ""}), content=False)
    for piece in split_chunks(reply.reasoning or "", 1):
        await emit(chunk({"reasoning_content": piece}), content=False)
    for piece in pieces:
        await emit(chunk({"content": piece}))
    for index, (call_id, name, args) in enumerate(calls):
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        await emit(chunk({"tool_calls": [head]}))
        arguments = json.dumps(args, ensure_ascii=False)
        step = max(1, -(-len(arguments) // 3))
        for i in range(0, len(arguments), step):
            frag = {"index": index, "function": {"arguments": arguments[i : i + step]}}
            await emit(chunk({"tool_calls": [frag]}))
    if reply.cut_after_chunks is not None:  # fewer content chunks than N: cut before finishing
        conn.cut()
    await emit(chunk({}, finish), content=False)
    if include_usage and usage is not None and not reply.usage_every_chunk:
        await emit(chunk({}, choices=False), content=False)
    await emit("data: [DONE]\n\n", content=False)
    await conn.end_stream()


async def _error(conn: Conn, status: int, message: str | None, headers: dict[str, str]) -> None:
    kind = _ERROR_TYPES.get(status, "server_error")
    text = message or {
        401: "Incorrect API key provided.",
        429: "Rate limit reached for requests.",
    }.get(status, "The server had an error while processing your request.")
    body = {"error": {"message": text, "type": kind, "param": None, "code": kind}}
    await conn.send_json(status, body, headers)
