"""AI overhead: what Warbler adds between a model's tokens and the user's screen.

    python bench/ai_overhead.py [--questions 30] [--words 40] [--word-ms 10] [--flush-ms 100]

A minimal OpenAI-compatible vendor runs in this process (its own thread and event loop, on
core 1 with the client) and streams ``--words`` words, one SSE chunk every ``--word-ms``; it
notes the monotonic time it wrote the first and the last token. The server under test (core 0)
runs a bot on that vendor; a user on a WebSocket asks ``--questions`` questions one after
another. Per question:

- first token -> first ``message.delta`` on the client (the number the issue asks for),
- last token -> ``message.completed`` on the client,
- send -> the vendor receiving the request (the reply job's start-up: queue, history, prompt).

CLOCK_MONOTONIC is one clock for every process on the machine, so the vendor's and the
client's timestamps compare directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from typing import Any

import httpx
import websockets
from common import Server, machine, percentile, pin_self, seed, write_result
from rich.console import Console
from rich.table import Table


class Vendor:
    """Streams a fixed answer as OpenAI chat-completion chunks; records token times."""

    def __init__(self, words: int, word_ms: float) -> None:
        self.words = words
        self.word_ms = word_ms
        self.port = 0
        self.received: list[float] = []
        self.first_token: list[float] = []
        self.last_token: list[float] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            self.received.append(time.monotonic())
            if not body.get("stream"):
                writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
            )

            def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                data = {
                    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }  # fmt: skip
                return b"data: " + json.dumps(data).encode() + b"\n\n"

            writer.write(chunk({"role": "assistant", "content": ""}))
            for i in range(self.words):
                writer.write(chunk({"content": f"word{i} "}))
                await writer.drain()
                now = time.monotonic()
                if i == 0:
                    self.first_token.append(now)
                if i == self.words - 1:
                    self.last_token.append(now)
                await asyncio.sleep(self.word_ms / 1000)
            writer.write(chunk({}, "stop"))
            usage = {"prompt_tokens": 20, "completion_tokens": self.words, "total_tokens": 0}
            writer.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
            writer.write(b"data: [DONE]\n\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def measure(questions: int, words: int, word_ms: float, flush_ms: int) -> dict[str, Any]:
    vendor = Vendor(words, word_ms)
    vendor.start()
    server = Server(
        env={
            "WARBLER_OUTBOUND_ALLOW_PRIVATE": "true",
            "WARBLER_AI_STREAM_FLUSH_MS": str(flush_ms),
            "WARBLER_AI_USER_MESSAGES_PER_MINUTE": "0",
            "WARBLER_AI_BOT_MESSAGES_PER_MINUTE": "0",
            "WARBLER_AI_TENANT_MESSAGES_PER_MINUTE": "0",
            "WARBLER_JOB_POLL_SECONDS": "0.05",
        }
    )
    server.start()
    try:
        world = await seed(server, 1, group=False)
        _, token = world["users"][0]
        api = f"{server.url}/api/v1"
        from warbler.config import load_settings
        from warbler.services import build_services

        svc = build_services(load_settings(None, data_dir=server.data_dir))
        try:
            key = await svc.auth.create_api_key(
                world["tenant_id"], name="bench-admin", scopes=["admin"], created_by=None
            )
        finally:
            await svc.close()
        admin = {"Authorization": f"Bearer {key['key']}"}
        user = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=api, timeout=30) as c:
            r = await c.post(
                "/ai/providers",
                headers=admin,
                json={
                    "name": "bench", "kind": "openai", "model": "bench", "api_key": "sk-bench",
                    "base_url": f"http://127.0.0.1:{vendor.port}/v1",
                },
            )  # fmt: skip
            r.raise_for_status()
            r = await c.post(
                "/bots",
                headers=admin,
                json={
                    "name": "Bench bot",
                    "provider_ids": [r.json()["id"]],
                    "persona": "Be brief.",
                },
            )
            r.raise_for_status()
            bot_user = r.json()["user_id"]
            r = await c.post(
                "/conversations", headers=user, json={"kind": "direct", "user_id": bot_user}
            )
            r.raise_for_status()
            conv = r.json()["id"]
            ws_url = server.url.replace("http", "ws") + "/api/v1/ws"
            sent: list[float] = []
            first_delta: list[float] = []
            completed: list[float] = []
            async with websockets.connect(
                ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
            ) as ws:
                for _ in range(questions):
                    sent.append(time.monotonic())
                    r = await c.post(
                        f"/conversations/{conv}/messages",
                        headers=user,
                        json={"text": "How long does a refund take?", "client_msg_id": str(uuid.uuid4())},
                    )  # fmt: skip
                    r.raise_for_status()
                    got_delta = False
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        event = frame.get("event")
                        if event == "message.delta" and not got_delta:
                            first_delta.append(time.monotonic())
                            got_delta = True
                        elif event == "message.completed":
                            completed.append(time.monotonic())
                            break
                    else:
                        raise RuntimeError("a reply did not complete within 30 s")
        n = min(len(sent), len(vendor.first_token), len(first_delta), len(completed))
        ms = 1000.0
        first = [(first_delta[i] - vendor.first_token[i]) * ms for i in range(n)]
        last = [(completed[i] - vendor.last_token[i]) * ms for i in range(n)]
        start = [(vendor.received[i] - sent[i]) * ms for i in range(n)]
        return {
            "questions": n,
            "words": words,
            "word_ms": word_ms,
            "flush_ms": flush_ms,
            **{
                f"first_token_to_delta_ms_p{p}": round(percentile(first, p), 1)
                for p in (50, 95, 99)
            },
            **{f"last_token_to_completed_ms_p{p}": round(percentile(last, p), 1) for p in (50, 95)},
            **{f"send_to_vendor_ms_p{p}": round(percentile(start, p), 1) for p in (50, 95)},
        }
    finally:
        server.stop()
        vendor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--word-ms", type=float, default=10.0)
    parser.add_argument("--flush-ms", type=str, default="100,0")
    args = parser.parse_args()
    pin_self(1)
    rows = [
        asyncio.run(measure(args.questions, args.words, args.word_ms, int(f)))
        for f in args.flush_ms.split(",")
    ]
    table = Table(title="AI overhead (ms): the provider's token -> the client's event")
    for col in ("flush ms", "n", "first tok→delta p50/p95/p99", "last tok→completed p50/p95",
                "send→vendor p50/p95"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["flush_ms"]), str(r["questions"]),
            f"{r['first_token_to_delta_ms_p50']} / {r['first_token_to_delta_ms_p95']} / "
            f"{r['first_token_to_delta_ms_p99']}",
            f"{r['last_token_to_completed_ms_p50']} / {r['last_token_to_completed_ms_p95']}",
            f"{r['send_to_vendor_ms_p50']} / {r['send_to_vendor_ms_p95']}",
        )  # fmt: skip
    Console().print(table)
    path = write_result("ai_overhead", rows, {"machine": machine(), "args": vars(args)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
