"""The WebSocket gateway: ``/api/v1/ws?cursor=N``. Protocol in docs/realtime.md.

Server frames: hello, event, synced, resync_required, heartbeat, pong, error.
Client frames: ping, typing, read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from warbler.delivery.session import DeviceSession, encode
from warbler.delivery.stream import catch_up, close_stream, open_stream
from warbler.errors import InvalidRequest, NotFound, Unauthenticated, WarblerError
from warbler.im.principal import Principal
from warbler.security.encryption import tenant_scope
from warbler.services import Services

log = logging.getLogger("warbler.gateway")
router = APIRouter()

CLOSE_AUTH = 4401
CLOSE_SLOW = 4008
CLOSE_SHUTDOWN = 1012
MAX_CLIENT_FRAME = 16 * 1024


@router.websocket("/ws")
async def gateway(websocket: WebSocket) -> None:
    svc: Services = websocket.app.state.services
    await websocket.accept()
    if websocket.app.state.readiness.draining:  # leaving: connect to another node
        await websocket.close(CLOSE_SHUTDOWN, "shutdown")
        return
    try:
        principal = await _authenticate(svc, websocket)
        cursor = _cursor(websocket.query_params.get("cursor"))
    except WarblerError as exc:
        await _send_error(websocket, exc)
        await websocket.close(CLOSE_AUTH, exc.code)
        return
    # The connection acts for the user's tenant: its data keys loaded for what it reads.
    async with tenant_scope(principal.tenant_id):
        await _serve(svc, websocket, principal, cursor)


async def _serve(
    svc: Services, websocket: WebSocket, principal: Principal, cursor: int | None
) -> None:
    session, _ = await open_stream(svc, principal)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await catch_up(svc, session, cursor, websocket.send_bytes)
        tasks = [
            asyncio.create_task(_write(websocket, session)),
            asyncio.create_task(_read(svc, websocket, session, principal)),
            asyncio.create_task(session.closed.wait()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await close_stream(svc, session)
        code = {"slow_consumer": CLOSE_SLOW, "shutdown": CLOSE_SHUTDOWN}.get(
            session.close_reason or "", 1000
        )
        # A slow consumer's socket may be full: do not wait on it for long.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code, session.close_reason or ""), 2)


async def _authenticate(svc: Services, websocket: WebSocket) -> Principal:
    secret = websocket.query_params.get("access_token")
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        secret = header[7:].strip()
    if not secret:
        raise Unauthenticated("send 'Authorization: Bearer …' or ?access_token=…")
    principal = await svc.auth.authenticate(secret, websocket.headers.get("x-warbler-user"))
    principal.require_user()
    return principal


def _cursor(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidRequest("cursor must be a non-negative integer")
    return value


async def _write(websocket: WebSocket, session: DeviceSession) -> None:
    while True:
        frame = await session.next_frame()
        if frame is None:
            return
        await websocket.send_bytes(frame)


async def _read(
    svc: Services, websocket: WebSocket, session: DeviceSession, principal: Principal
) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("bytes") or (message.get("text") or "").encode()
        if len(raw) > MAX_CLIENT_FRAME:
            session.send_control(_error("too_large", "client frames are at most 16 KiB"))
            continue
        try:
            frame = orjson.loads(raw)
            if not isinstance(frame, dict):
                raise ValueError
        except ValueError:
            session.send_control(_error("malformed_json", "frames are JSON objects"))
            continue
        try:
            await _handle(svc, session, principal, frame)
        except WarblerError as exc:
            session.send_control(_error(exc.code, exc.message, exc.details))


async def _handle(
    svc: Services, session: DeviceSession, principal: Principal, frame: dict[str, Any]
) -> None:
    kind = frame.get("type")
    if kind == "ping":
        session.send_control({"type": "pong", "ref": frame.get("ref")})
    elif kind == "typing":
        conv = str(frame.get("conversation_id", ""))
        if conv not in svc.hub.conversations_of(session.user_id):
            raise NotFound("no such conversation", details={"conversation_id": conv})
        state = "stopped" if frame.get("state") == "stopped" else "typing"
        svc.presence.typing(session.tenant_id, session.user_id, conv, state)
    elif kind == "read":
        seq = frame.get("seq")
        if not isinstance(seq, int):
            raise InvalidRequest("read needs an integer seq")
        await svc.receipts.mark_read(principal, str(frame.get("conversation_id", "")), seq)
    else:
        session.send_control(_error("invalid_request", f"unknown frame type {kind!r}"))


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message, "details": details or {}}}


async def _send_error(websocket: WebSocket, exc: WarblerError) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_bytes(encode(_error(exc.code, exc.message, exc.details)))
