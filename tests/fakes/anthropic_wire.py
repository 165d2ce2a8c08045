"""A fake Anthropic Messages API on a real socket, scripted per request (same style as
``openai_wire``).

Usage::

    from tests.fakes.anthropic_wire import FakeAnthropic, Reply

    with FakeAnthropic() as fake:               # or the ``fake_anthropic`` pytest fixture
        fake.base_url                           # "http://127.0.0.1:PORT" (no /v1: the
                                                # client appends /v1/messages)
        fake.script(
            Reply(status=529),                  # overloaded_error
            Reply(text="Hello 你好", usage=(20, 4)),
            Reply(text="Let me look.", tool_calls=[("search_kb", {"query": "refund"})]),
        )
        fake.requests[0].headers["x-api-key"], fake.requests[0].body["system"]

``POST /v1/messages``: non-stream JSON (``content`` blocks ``text`` / ``tool_use``,
``stop_reason`` end_turn / tool_use / max_tokens, ``usage.input_tokens/output_tokens``), or with
``"stream": true`` SSE events: ``message_start`` (usage.input_tokens), ``content_block_start``,
``ping``, ``content_block_delta`` (``text_delta``; ``input_json_delta`` pieces for tool_use;
``thinking_delta`` when ``Reply.reasoning``), ``content_block_stop``, ``message_delta``
(stop_reason + usage.output_tokens), ``message_stop``. Errors use Anthropic's shape
``{"type": "error", "error": {"type": "rate_limit_error", "message": ...}}`` for 400, 401, 403,
404, 413, 429, 500, 529 (overloaded). ``Reply.stream_error_after_chunks=N`` sends an
``event: error`` (overloaded_error) mid-stream. Every other ``Reply`` field works as in
``openai_wire`` (cut_after_chunks, hang_seconds, chunk_delay, omit_usage, hold, ...).
With nothing queued the answer is ``"echo: <last user message>"``. ``FakeAnthropic(api_key=)``
answers 401 to any other ``x-api-key``.
"""

from __future__ import annotations

import json
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

__all__ = ["FakeAnthropic", "RecordedRequest", "Reply"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


class FakeAnthropic(FakeServer):
    thread_name = "fake-anthropic"

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self._calls = 0
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.origin

    async def handle(self, request: RecordedRequest, conn: Conn) -> None:
        # The official SDK's newer versions send the key as a bearer token instead.
        presented = request.headers.get("x-api-key") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        if self.api_key is not None and presented != self.api_key:
            await _error(conn, 401, "invalid x-api-key", {})
            return
        if request.method == "POST" and request.path.endswith("/v1/messages"):
            await self._messages(request, conn, self.next_reply(request))
        else:
            await _error(conn, 404, f"Unknown path {request.path}", {})

    async def _messages(self, request: RecordedRequest, conn: Conn, reply: Reply) -> None:
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
        model = reply.model or body.get("model") or "claude-fake"
        text = reply.text
        if text is None:
            text = "" if reply.tool_calls else f"echo: {last_user_text(body.get('messages'))}"
        pieces = split_chunks(text, reply.chunks_per_word)
        calls = [(f"toolu_{n}_{i}", name, args) for i, (name, args) in enumerate(reply.tool_calls)]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        stop_reason = _STOP.get(finish, finish)
        system = body.get("system")
        prompt = count_words(system if isinstance(system, str) else "") + sum(
            count_words(m.get("content") if isinstance(m.get("content"), str) else "")
            for m in body.get("messages", [])
            if isinstance(m, dict)
        )
        p, c = reply.usage or (prompt, len(pieces) + len(calls))
        if not body.get("stream"):
            content: list[dict[str, Any]] = []
            if reply.reasoning:
                content.append({"type": "thinking", "thinking": reply.reasoning, "signature": "x"})
            if text:
                content.append({"type": "text", "text": text})
            content += [{"type": "tool_use", "id": i, "name": nm, "input": a} for i, nm, a in calls]
            out: dict[str, Any] = {
                "id": f"msg_{n}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
            }
            if not reply.omit_usage:
                out["usage"] = {"input_tokens": p, "output_tokens": c}
            await conn.send_json(200, out, extra)
            return
        await _stream(conn, reply, n, model, text, pieces, calls, stop_reason, (p, c), extra)


async def _stream(
    conn: Conn,
    reply: Reply,
    n: int,
    model: str,
    text: str,
    pieces: list[str],
    calls: list[tuple[str, str, dict[str, Any]]],
    stop_reason: str,
    usage: tuple[int, int],
    extra: dict[str, str],
) -> None:
    await conn.start_stream(extra)
    sent = 0

    async def emit(kind: str, data: dict[str, Any], content: bool = False) -> None:
        nonlocal sent
        if content:
            if reply.cut_after_chunks is not None and sent >= reply.cut_after_chunks:
                conn.cut()
            if (
                reply.stream_error_after_chunks is not None
                and sent == reply.stream_error_after_chunks
            ):
                err = {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"},
                }
                await conn.write_chunk(f"event: error\ndata: {json.dumps(err)}\n\n")
                await conn.end_stream()
                raise _Ended
            if reply.hang_after_chunks is not None and sent == reply.hang_after_chunks:
                await conn.sleep(reply.hang_seconds or 0)
        event = f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        if reply.sse_comments:
            event = ": keep-alive\n\n" + event + "\n"
        await conn.write_chunk(event)
        if content:
            sent += 1
            if reply.chunk_delay:
                await conn.sleep(reply.chunk_delay)

    message: dict[str, Any] = {
        "id": f"msg_{n}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if not reply.omit_usage:
        message["usage"] = {"input_tokens": usage[0], "output_tokens": 1}
    try:
        await emit("message_start", {"type": "message_start", "message": message})
        index = 0
        if reply.reasoning:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            await emit(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
            for piece in split_chunks(reply.reasoning, 1):
                delta = {"type": "thinking_delta", "thinking": piece}
                await emit(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            await emit("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if text:
            block = {"type": "text", "text": ""}
            await emit(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
            await emit("ping", {"type": "ping"})
            for piece in pieces:
                delta = {"type": "text_delta", "text": piece}
                await emit(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    content=True,
                )
            await emit("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        for call_id, name, args in calls:
            block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            await emit(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
                content=True,
            )
            arguments = json.dumps(args, ensure_ascii=False)
            step = max(1, -(-len(arguments) // 3))
            for i in range(0, len(arguments), step):
                delta = {"type": "input_json_delta", "partial_json": arguments[i : i + step]}
                await emit(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    content=True,
                )
            await emit("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if reply.cut_after_chunks is not None:  # fewer content chunks than N: cut before finishing
            conn.cut()
        final: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        }
        if not reply.omit_usage:
            final["usage"] = {"output_tokens": usage[1]}
        await emit("message_delta", final)
        await emit("message_stop", {"type": "message_stop"})
        await conn.end_stream()
    except _Ended:
        return


class _Ended(Exception):
    pass


async def _error(conn: Conn, status: int, message: str | None, headers: dict[str, str]) -> None:
    kind = _ERROR_TYPES.get(status, "api_error")
    text = message or {
        401: "invalid x-api-key",
        429: "Number of request tokens has exceeded your per-minute rate limit",
        529: "Overloaded",
    }.get(status, "Internal server error")
    body = {"type": "error", "error": {"type": kind, "message": text}}
    await conn.send_json(status, body, headers)
