"""Request size limits (docs/security.md): JSON bodies, uploads and WebSocket frames are each
refused past their limit, with a typed error, before the whole body is read or kept.
(The KB document limit and more JSON cases: test_kb_api.py, test_errors.py, test_files.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import websockets

from tests.conftest import backend_settings, group_of, seed_tenant

JSON_LIMIT = 4 * 1024
UPLOAD_LIMIT = 32 * 1024


@pytest.fixture
def settings(tmp_path, backend, request):
    return backend_settings(
        backend, request, tmp_path / "data", max_request_bytes=JSON_LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
    )  # fmt: skip


async def test_a_json_body_over_the_limit_is_413_even_outside_the_api_prefix(client, make_tenant):
    """The OpenAI-compatible /v1 routes sit outside /api/v1 and have the same limit."""
    ann = await (await make_tenant()).user("ann")
    body = {"model": "x", "messages": [{"role": "user", "content": "字" * JSON_LIMIT}]}
    r = await client.post("http://test/v1/chat/completions", json=body, headers=ann.headers)
    assert r.status_code == 413
    assert r.json()["error"] == {
        "code": "too_large", "message": f"the request body is larger than {JSON_LIMIT} bytes",
        "details": {"limit": JSON_LIMIT},
    }  # fmt: skip


async def test_a_chunked_upload_over_the_limit_is_413(client, make_tenant):
    """No Content-Length to refuse up front: the stream is cut off as it passes the limit."""
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    boundary = "warblerboundary"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"conversation_id\"\r\n\r\n"
        f"{conv}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
    ).encode()  # fmt: skip
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(64):  # 64 x 8 KiB = 512 KiB, far past limit + multipart overhead
            sent += 8192
            yield b"x" * 8192
        yield f"\r\n--{boundary}--\r\n".encode()

    r = await client.post(
        "/files", content=chunks(), headers={**ann.headers,
        "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


@pytest.mark.slow
async def test_websocket_frames_over_16_kib_are_refused_and_over_64_kib_close(
    tmp_path, server_factory
):
    data = tmp_path / "ws-data"
    seeded = await asyncio.to_thread(seed_tenant, data, "acme", [("ann", "member")])
    server = server_factory(data_dir=data)
    url = server.api.replace("http", "ws", 1) + "/ws?cursor=0"
    auth = {"Authorization": f"Bearer {seeded['users']['ann']['token']}"}
    async with websockets.connect(url, additional_headers=auth, max_size=None) as ws:
        async with asyncio.timeout(10):
            while json.loads(await ws.recv())["type"] != "synced":
                pass
            # Over the gateway's 16 KiB: an error frame, the socket stays open.
            await ws.send(json.dumps({"type": "ping", "ref": "x" * (17 * 1024)}))
            frame = json.loads(await ws.recv())
            assert frame["type"] == "error" and frame["error"]["code"] == "too_large"
            await ws.send(json.dumps({"type": "ping", "ref": "ok"}))
            assert json.loads(await ws.recv()) == {"type": "pong", "ref": "ok"}
            # Over the server's 64 KiB message limit: closed with 1009 (message too big).
            await ws.send("y" * (65 * 1024))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
