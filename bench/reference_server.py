"""The reference point for the WebSocket benchmarks: a minimal broadcast server on Warbler's stack.

    python bench/reference_server.py --port 8001

FastAPI on uvicorn with the same protocol choices as `warbler serve` (uvloop, httptools, the
`websockets` sans-I/O implementation, 64 KiB frames, permessage-deflate only with
--ws-compression, as Warbler with WARBLER_WS_COMPRESSION) and orjson, but no auth, no
database, no per-connection queue: a client connects to `/ws` and gets a
`hello`; `POST /broadcast` wraps its JSON body as a `message.new` event, encodes it once and
writes it to every connected socket before answering. What the benchmarks measure against it
is what Python itself does here, so Warbler's figures read as ratios to it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import orjson
import uvicorn
from common import Server
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response

WS_MAX_SIZE = 64 * 1024  # as `warbler serve` (src/warbler/cli.py)


def create_app() -> FastAPI:
    app = FastAPI()
    sockets: set[WebSocket] = set()

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
