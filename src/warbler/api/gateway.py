"""The WebSocket gateway: ``/api/v1/ws?cursor=N``. Protocol in docs/realtime.md.

Server frames: hello, event, synced, resync_required, heartbeat, pong, error.
Client frames: ping, typing, read.

It is a plain ASGI app: an idle connection is one task (the server's, reading the client)
and its ``DeviceSession``, with no framework objects, so that 10k sockets stay small. The app
(``WarblerApp`` in app.py) hands the gateway its handshakes ahead of every middleware; the
route below declares it with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette.datastructures import QueryParams
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from warbler.api.asgi import header
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
CLOSE_WAIT_SECONDS = 2.0  # a slow consumer's socket may be full: do not wait on it for long


@router.websocket("/ws")
async def gateway(websocket: WebSocket) -> None:
    """Reached through the router only for a path ``WarblerApp`` does not take (behind a
    ``root_path``, or with a trailing slash)."""
    await serve(websocket.scope, websocket.receive, websocket.send)


class _Socket:
    """The ASGI connection's sending side, as the device session and the replay use it."""

    __slots__ = ("send",)

    def __init__(self, send: Send) -> None:
        self.send = send

    def write(self, frame: bytes) -> Awaitable[None]:
        return self.send({"type": "websocket.send", "bytes": frame})

    async def close(self, code: int, reason: str) -> None:
        await self.send({"type": "websocket.close", "code": code, "reason": reason})


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """The gateway as an ASGI app (``scope["app"]`` is the Warbler app). One coroutine for the
    connection's life, holding only what it needs: every frame kept costs 10k times over."""
    app = scope["app"]
    svc: Services = app.state.services
    if (await receive())["type"] != "websocket.connect":
        return  # gone before the handshake
    socket = _Socket(send)
    await send({"type": "websocket.accept"})
    if app.state.readiness.draining:  # leaving: connect to another node
        await socket.close(CLOSE_SHUTDOWN, "shutdown")
        return
    try:
        principal, cursor = await _authenticate(svc, scope)
    except WarblerError as exc:
        await _send_error(socket, exc)
        await socket.close(CLOSE_AUTH, exc.code)
        return
    tenant_id = principal.tenant_id
    # The connection acts for the user's tenant (its data keys loaded) while it reads; an
    # idle connection holds no scope.
    async with tenant_scope(tenant_id):
        session, _ = await open_stream(svc, principal, socket)
    client_left = False
    try:
        async with tenant_scope(tenant_id):
            await catch_up(svc, session, cursor, socket.write)
        # Read in this task; writes happen where frames are offered (see DeviceSession), and
        # a close from elsewhere (too slow, shutdown, erasure) interrupts the wait.
        while (message := await session.from_client(receive)) is not None:
            if message["type"] == "websocket.disconnect":
                client_left = True
                break
            async with tenant_scope(tenant_id):
                await _on_client_frame(svc, session, principal, message)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the socket went away under a write
    except Exception:
        log.exception("WebSocket of user %s failed", session.user_id)
    finally:
        reason = session.close_reason or ""  # closed by the server for a reason, or not
        session.close("disconnected")
        async with tenant_scope(tenant_id):
            await close_stream(svc, session)
        if not client_left:
            code = {"slow_consumer": CLOSE_SLOW, "shutdown": CLOSE_SHUTDOWN}.get(reason, 1000)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                    await socket.close(code, reason)


async def _authenticate(svc: Services, scope: Scope) -> tuple[Principal, int | None]:
    """The connection's user and cursor, from the query string and headers."""
    query = QueryParams(scope["query_string"])
    secret = query.get("access_token")
    authorization = header(scope, b"authorization") or ""
    if authorization.lower().startswith("bearer "):
        secret = authorization[7:].strip()
    if not secret:
        raise Unauthenticated("send 'Authorization: Bearer …' or ?access_token=…")
    principal = await svc.auth.authenticate(secret, header(scope, b"x-warbler-user"))
    principal.require_user()
    return principal, _cursor(query.get("cursor"))


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


async def _on_client_frame(
    svc: Services, session: DeviceSession, principal: Principal, message: Message
) -> None:
    raw = message.get("bytes") or (message.get("text") or "").encode()
    if len(raw) > MAX_CLIENT_FRAME:
        session.send_control(_error("too_large", "client frames are at most 16 KiB"))
        return
    try:
        frame = orjson.loads(raw)
        if not isinstance(frame, dict):
            raise ValueError
    except ValueError:
        session.send_control(_error("malformed_json", "frames are JSON objects"))
        return
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


async def _send_error(socket: _Socket, exc: WarblerError) -> None:
    with contextlib.suppress(Exception):
        await socket.write(encode(_error(exc.code, exc.message, exc.details)))
