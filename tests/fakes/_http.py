"""A tiny HTTP/1.1 server on 127.0.0.1 in a background thread, for the fake model vendors.

Hand-written over ``asyncio.start_server`` (not uvicorn) so a script can do what real vendors
do when things go wrong: close the socket in the middle of a chunked stream, accept a request
and say nothing, stall between chunks. It runs its own event loop in its own thread, so it
serves an in-process ASGI app under test and separate ``warbler serve`` processes alike.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON body, or None


@dataclass
class Reply:
    """One scripted answer, consumed by one request. Fields a vendor does not know are ignored.

    text            the answer (None: echo the last user message, or "" when tool calls given)
    tool_calls      [("name", {args}), ...]; ids are "call_<n>" (OpenAI) / "toolu_<n>" (Anthropic)
    usage           (prompt_tokens, completion_tokens); None: counted by the fake (words/chunks)
    omit_usage      send no usage at all (the client must estimate)
    status          HTTP status; != 200 sends the vendor's error JSON
    error_message   the message inside that error JSON
    retry_after     seconds, sent as Retry-After (and retry-after-ms) on any status
    chunk_delay     seconds between streamed chunks
    cut_after_chunks   abort the TCP connection after this many content chunks (text pieces,
                    tool-call fragments); more than the answer has: cut just before it finishes
    hang_seconds    sleep this long before the response headers (or, with hang_after_chunks,
                    after that many content chunks), then carry on normally
    hang_after_chunks  see hang_seconds
    chunks_per_word split every word (every CJK character) into this many chunks
    finish_reason   override ("length", "content_filter", ...)
    reasoning       (OpenAI) DeepSeek-style ``reasoning_content`` deltas sent before the text
    usage_every_chunk  (OpenAI) some vendors put ``usage`` in every chunk
    sse_comments    send ``: keep-alive`` comment lines and blank lines between events
    stream_error_after_chunks  (Anthropic) send an ``event: error`` (overloaded) after N chunks
    model           the model name the response reports (default: the requested one)
    hold            a threading.Event: the response waits until it is set (or the fake closes)
    """

    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    omit_usage: bool = False
    status: int = 200
    error_message: str | None = None
    retry_after: float | None = None
    chunk_delay: float = 0.0
    cut_after_chunks: int | None = None
    hang_seconds: float | None = None
    hang_after_chunks: int | None = None
    chunks_per_word: int = 1
    finish_reason: str | None = None
    reasoning: str | None = None
    usage_every_chunk: bool = False
    sse_comments: bool = False
    stream_error_after_chunks: int | None = None
    model: str | None = None
    hold: threading.Event | None = None


_WORD = re.compile(
    r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]|[^\s\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]+\s*|\s+"
)


def split_chunks(text: str, per_word: int) -> list[str]:
    """Words (each CJK character is one) split further into ``per_word`` pieces each."""
    out: list[str] = []
    for word in _WORD.findall(text):
        n = max(1, min(per_word, len(word)))
        step = -(-len(word) // n)
        out.extend(word[i : i + step] for i in range(0, len(word), step))
    return out


def count_words(text: str) -> int:
    return len([w for w in _WORD.findall(text) if w.strip()])


def last_user_text(messages: Any) -> str:
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    part.get("text", "")
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
    return ""


class Stop(Exception):
    """Raised by a handler to drop the connection without a clean end (a cut stream)."""


class Conn:
    """The response side of one request on one connection."""

    def __init__(self, writer: asyncio.StreamWriter, closing: threading.Event) -> None:
        self.writer = writer
        self.closing = closing

    async def send_json(
        self, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        head = {"content-type": "application/json", "content-length": str(len(data))}
        head.update(headers or {})
        self.writer.write(self._head(status, head) + data)
        await self.writer.drain()

    async def start_stream(self, headers: dict[str, str] | None = None) -> None:
        head = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
        }
        head.update(headers or {})
        self.writer.write(self._head(200, head))
        await self.writer.drain()

    async def write_chunk(self, text: str) -> None:
        data = text.encode()
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def end_stream(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    def cut(self) -> None:
        """Drop the connection now, mid-response (no terminating chunk)."""
        self.writer.transport.abort()
        raise Stop

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake early when the fake is closing."""
        deadline = time.monotonic() + seconds
        while not self.closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

    async def wait_for(self, event: threading.Event) -> None:
        # A threading.Event set from the test's thread: poll it (an asyncio.Event would
        # belong to this loop and could not be set from outside safely).
        while not event.is_set() and not self.closing.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


Handler = Callable[[RecordedRequest, Conn], Awaitable[None]]


class FakeServer:
    """The shared machinery: thread, loop, socket, request parsing, script queue, records."""

    thread_name = "fake-http"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.responder: Callable[[RecordedRequest], Reply] | None = None
        self._queue: collections.deque[Reply] = collections.deque()
        self._closing = threading.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=self.thread_name, daemon=True
        )
        self._thread.start()
        if not started.wait(10) or self._server is None:
            raise RuntimeError("fake server did not start")
        self.port: int = self._server.sockets[0].getsockname()[1]

    # -- scripting ------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies, consumed one per model request (in order)."""
        self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        return len(self._queue)

    def next_reply(self, request: RecordedRequest) -> Reply:
        try:
            return self._queue.popleft()
        except IndexError:
            return self.responder(request) if self.responder is not None else Reply()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests arrived (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests after {timeout}s, wanted {n}")
            time.sleep(0.01)
        return list(self.requests)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def handle(self, request: RecordedRequest, conn: Conn) -> None:
        raise NotImplementedError

    # -- internals ------------------------------------------------------------------------

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._on_connection, "127.0.0.1", 0)
            )
        finally:
            started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Conn(writer, self._closing)
        try:
            while not self._closing.is_set():
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                await self.handle(request, conn)
        except (Stop, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return RecordedRequest(method, target.split("?", 1)[0], headers, parsed)


def retry_headers(reply: Reply) -> dict[str, str]:
    if reply.retry_after is None:
        return {}
    seconds = reply.retry_after
    text = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
    return {"retry-after": text, "retry-after-ms": str(int(seconds * 1000))}
