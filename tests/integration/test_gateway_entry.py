"""The WebSocket gateway answers however a handshake reaches it: through the shortcut the app
factory mounts for its exact path, and through FastAPI's router (here: behind a root path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from starlette.testclient import TestClient

from tests.conftest import make_settings, seed_tenant
from warbler.app import create_app


def _until(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = orjson.loads(ws.receive_bytes())
        if frame["type"] == kind:
            return frame


def test_the_gateway_serves_through_the_shortcut_and_through_the_router(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    token = seed_tenant(data, "acme", [("ann", "admin")])["users"]["ann"]["token"]
    app = create_app(make_settings(data))
    with TestClient(app, root_path="/chat") as client:
        for path in ("/api/v1/ws", "/chat/api/v1/ws"):  # the shortcut's path; the router's
            with client.websocket_connect(f"{path}?access_token={token}&cursor=0") as ws:
                hello = _until(ws, "hello")
                assert _until(ws, "synced")["cursor"] == hello["cursor"]
                ws.send_text('{"type": "ping", "ref": "r1"}')
                assert _until(ws, "pong") == {"type": "pong", "ref": "r1"}
            with client.websocket_connect(f"{path}?access_token=wbt_nope") as ws:
                error = _until(ws, "error")
                assert error["error"]["code"] == "unauthenticated"
                message = ws.receive()
                assert (message["type"], message["code"]) == ("websocket.close", 4401)
