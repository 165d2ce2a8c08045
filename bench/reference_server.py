"""The reference point for the WebSocket benchmarks: a minimal broadcast server on Warbler's stack.

    python bench/reference_server.py --port 8001

FastAPI on uvicorn with the same protocol choices as `warbler serve` (uvloop, httptools, the
`websockets` sans-I/O implementation, 64 KiB frames, permessage-deflate only with
--ws-compression, as Warbler with WARBLER_WS_COMPRESSION) and orjson, but no auth, no
database, no per-connection queue: a client connects to `/ws` and gets a
`hello`; `POST /broadcast` wraps its JSON body as a `message.new` event, encodes it once and
writes it to every connected socket before answering. `POST /send` is the HTTP half: it
validates a body shaped like Warbler's send (a pydantic model) and answers 201 with a
message view of Warbler's shape encoded with orjson, storing nothing. What the benchmarks
measure against it is what Python itself does here, so Warbler's figures read as ratios to it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import uvicorn
from common import Server
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response
from pydantic import BaseModel, Field

WS_MAX_SIZE = 64 * 1024  # as `warbler serve` (src/warbler/cli.py)


class SendIn(BaseModel):
    """The fields of Warbler's send body (warbler.api.schemas.MessageIn), validated alike."""

    kind: Literal["text", "image", "file", "card", "system"] = "text"
    text: str | None = None
    data: dict[str, Any] | None = None
    file_id: str | None = Field(None, max_length=26)
    reply_to_id: str | None = Field(None, max_length=26)
    mentions: list[str] = Field(default_factory=list, max_length=100)
    mention_all: bool = False
    client_msg_id: str | None = Field(None, min_length=1, max_length=100)


def reference_message(key: str, n: int, text: str | None = None) -> dict[str, Any]:
    """A body shaped like Warbler's message view, so the reference's frames and answers are
    the size of Warbler's."""
    return {
        "message": {
            "id": f"01M8ZZREFERENCE{n:011d}", "conversation_id": "01M8ZZREFERENCECONVERSATION",
            "seq": n, "sender_id": "01M8ZZREFERENCESENDER00000", "client_msg_id": key,
            "kind": "text", "text": text if text is not None else f"fanout {n} 测试消息",
            "data": None, "file": None, "reply_to_id": None, "mentions": [],
            "mention_all": False, "created_at": "2026-11-24T16:35:13.737837+00:00",
            "edited_at": None, "recalled": False, "recalled_at": None,
        }
    }  # fmt: skip


def create_app() -> FastAPI:
    app = FastAPI()
    sockets: set[WebSocket] = set()
    seq = itertools.count(1)

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_bytes(orjson.dumps({"type": "hello"}))
        sockets.add(websocket)
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sockets.discard(websocket)

    @app.post("/broadcast")
    async def broadcast(request: Request) -> Response:
        data = orjson.loads(await request.body())
        wire = orjson.dumps({"type": "event", "event": "message.new", "data": data})
        sent = 0
        for websocket in list(sockets):
            try:
                await websocket.send_bytes(wire)
                sent += 1
            except Exception:  # gone since the copy was taken
                sockets.discard(websocket)
        return Response(orjson.dumps({"sent": sent}), media_type="application/json")

    @app.post("/send", status_code=201)
    async def send(body: SendIn) -> Response:
        n = next(seq)
        view = reference_message(body.client_msg_id or f"ref-{n}", n, body.text)["message"]
        view["created_at"] = datetime.now(UTC)
        return Response(orjson.dumps(view), status_code=201, media_type="application/json")

    return app


class ReferenceServer(Server):
    """The reference server as a bench `Server`: own process, pinned, same lifecycle."""

    def command(self) -> list[str]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--port", str(self.port)]
        if self.env.get("WARBLER_WS_COMPRESSION", "").lower() in ("1", "true", "yes", "on"):
            cmd.append("--ws-compression")  # as Warbler's setting of the same name
        return cmd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--ws-compression", action="store_true", help="accept permessage-deflate (Warbler: off)"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            create_app(),
            host=args.host,
            port=args.port,
            log_level="warning",
            ws_max_size=WS_MAX_SIZE,
            ws_per_message_deflate=args.ws_compression,
        )


if __name__ == "__main__":
    main()
