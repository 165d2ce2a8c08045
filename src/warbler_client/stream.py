"""``EventStream``: live events over the WebSocket gateway that survive any disconnect.

The stream remembers the id of the last event it yielded (its cursor). Whatever ends a
connection (a network error, a server restart, a slow-consumer close) it reconnects with
capped exponential backoff and resumes with ``?cursor=``; the server replays what was
missed, and anything seen twice is dropped by id. Protocol: docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from warbler_client.errors import WarblerAPIError, WarblerConnectionError

if TYPE_CHECKING:
    from warbler_client.client import AsyncClient

log = logging.getLogger("warbler_client.stream")

CLOSE_AUTH = 4401
CLOSE_SLOW = 4008
CLOSE_SHUTDOWN = 1012
_STATUS_OF_CODE = {"unauthenticated": 401, "forbidden": 403, "invalid_request": 400}

Frame = dict[str, Any]


class EventStream:
    """An async iterator of event frames ``{"type": "event", "event", "id",
    "conversation_id", "data"}``, plus ``{"type": "resync_required", "cursor": N}`` when the
    cursor could not be resumed (reload your state; the stream continues from ``N``).

    Ephemeral events (typing, presence, receipt) have ``id`` ``None``: they are yielded but
    never move the cursor, and are not replayed after a reconnect.
    """

    def __init__(
        self,
        client: AsyncClient,
        cursor: int | None = None,
        *,
        max_reconnect_seconds: float | None = None,
        include_control: bool = False,
        backoff_seconds: float = 0.1,
        backoff_max_seconds: float = 5.0,
    ) -> None:
        self.client = client
        self.cursor = cursor
        self.max_reconnect_seconds = max_reconnect_seconds
        self.include_control = include_control
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.reconnects = 0  # connections opened after the first: how often it had to resume
        self.last_close_code: int | None = None
        self.heartbeat_seconds: float | None = None
        self._ws: ClientConnection | None = None
        self._connections = 0
        self._closed = False
        self._pending: list[Frame] = []
        self._last_error: dict[str, Any] = {}  # the server's last error frame, for 4401

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self) -> None:
        """Open the socket now (normally the first iteration does): once this returns, the
        server has registered this device and every later event reaches it."""
        if self._ws is None and not self._closed:
            await self._reconnect()

    async def close(self) -> None:
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def __aenter__(self) -> EventStream:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- client frames ---------------------------------------------------------------------

    async def send_typing(self, conversation_id: str, state: str = "typing") -> None:
        """Tell the other members you are typing (over the socket; REST when not connected)."""
        if not await self._send({"type": "typing", "conversation_id": conversation_id,
                                 "state": state}):  # fmt: skip
            await self.client.typing(conversation_id, state)

    async def send_read(self, conversation_id: str, seq: int) -> None:
        """Move your read marker (over the socket; REST when not connected)."""
        if not await self._send({"type": "read", "conversation_id": conversation_id,
                                 "seq": seq}):  # fmt: skip
            await self.client.mark_read(conversation_id, seq)

    async def _send(self, frame: Frame) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            return False
        return True

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Frame:
        while True:
            if self._pending:
                return self._pending.pop(0)
            if self._closed:
                raise StopAsyncIteration
            if self._ws is None:
                await self._reconnect()
                continue
            frame = await self._receive(self._ws)
            if frame is not None:
                out = self._handle(frame)
                if out is not None:
                    return out

    async def _receive(self, ws: ClientConnection) -> Frame | None:
        """The next frame, or ``None`` after dropping a dead connection (or a non-JSON
        frame)."""
        try:
            # A silent server (heartbeats stopped) counts as gone: resume elsewhere.
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.)
            async with asyncio.timeout(self._idle_timeout()):
                raw = await ws.recv()
        except ConnectionClosed as exc:
            self._lost(ws, exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else "")
            return None
        except (TimeoutError, OSError) as exc:
            log.info("event stream: connection lost (%r); resuming", exc)
            self._lost(ws, None, "")
            with contextlib.suppress(Exception):
                await ws.close()
            return None
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("event stream: ignoring a frame that is not JSON")
            return None
        return frame if isinstance(frame, dict) else None

    def _idle_timeout(self) -> float | None:
        if self.heartbeat_seconds is None:
            return None
        return self.heartbeat_seconds * 3 + 5

    def _lost(self, ws: ClientConnection, code: int | None, reason: str) -> None:
        if self._ws is ws:
            self._ws = None
        self.last_close_code = code
        if code == CLOSE_AUTH:
            self._closed = True
            raise _auth_error(self._last_error, reason)
        log.info("event stream closed (code %s %s); resuming from %s", code, reason, self.cursor)

    def _handle(self, frame: Frame) -> Frame | None:
        """Apply a frame to the cursor; return what the iterator should yield, if anything."""
        kind = frame.get("type")
        if kind == "event":
            event_id = frame.get("id")
            if event_id is None:
                return frame
            if self.cursor is not None and event_id <= self.cursor:
                return None  # already yielded: a replay overlapping live delivery
            self.cursor = event_id
            return frame
        if kind == "synced":
            self.cursor = max(self.cursor or 0, int(frame["cursor"]))
        elif kind == "resync_required":
            # The server cannot replay from our cursor (too old, or another database):
            # restart from its cursor, even when that is lower than ours.
            self.cursor = int(frame["cursor"])
            return {"type": "resync_required", "cursor": self.cursor}
        elif kind == "error":
            self._last_error = frame.get("error") or {}
            log.warning("event stream: server error frame %s", self._last_error)
        return frame if self.include_control else None

    # -- connecting ------------------------------------------------------------------------

    async def _reconnect(self) -> None:
        """Connect (retrying with capped backoff) and read ``hello``; raise on auth failure
        or once ``max_reconnect_seconds`` have passed without a connection. Returns quietly
        when the stream is closed meanwhile."""
        started = time.monotonic()
        attempt = 0
        while not self._closed:
            attempt += 1
            try:
                await self._open()
                return
            except WarblerAPIError:
                self._closed = True
                raise
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                error: Exception = exc
            waited = time.monotonic() - started
            if self.max_reconnect_seconds is not None and waited >= self.max_reconnect_seconds:
                raise WarblerConnectionError(
                    f"could not reconnect to {self.client.base_url} in {waited:.1f}s: {error!r}"
                ) from error
            delay = min(self.backoff_seconds * 2 ** (attempt - 1), self.backoff_max_seconds)
            delay *= random.uniform(0.5, 1.0)  # jitter: a restarted server is not stampeded
            if self.max_reconnect_seconds is not None:
                delay = min(
                    delay, max(0.0, started + self.max_reconnect_seconds - time.monotonic())
                )
            log.info("event stream: connect failed (%r); retrying in %.2fs", error, delay)
            await asyncio.sleep(delay)

    async def _open(self) -> None:
        try:
            ws = await connect(
                self.client.ws_url(self.cursor),
                additional_headers=self.client.auth_headers(),
                open_timeout=self.client.timeout,
                max_size=None,  # the server bounds its frames; a big message must not kill us
                user_agent_header="warbler-client",
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise WarblerAPIError(status, "unauthenticated", "WebSocket rejected") from exc
            raise
        try:
            hello = await self._first_frame(ws)
        except BaseException:
            with contextlib.suppress(Exception):
                await ws.close()
            raise
        if self._closed:  # close() was called while we were connecting
            await ws.close()
            return
        if self.cursor is None:
            # Only a fresh stream adopts the server's cursor: when resuming, hello carries the
            # latest id, and the replay of what we missed is still to come.
            self.cursor = int(hello.get("cursor") or 0)
        beat = hello.get("heartbeat_seconds")
        self.heartbeat_seconds = float(beat) if isinstance(beat, int | float) else None
        self._ws = ws
        self._connections += 1
        if self._connections > 1:
            self.reconnects += 1
        if self.include_control:
            self._pending.append(hello)

    async def _first_frame(self, ws: ClientConnection) -> Frame:
        """Read until ``hello``; an error frame followed by a 4401 close is an auth failure."""
        while True:
            try:
                async with asyncio.timeout(self.client.timeout):
                    raw = await ws.recv()
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == CLOSE_AUTH:
                    raise _auth_error(self._last_error, exc.rcvd.reason) from exc
                raise
            frame = json.loads(raw)
            if frame.get("type") == "hello":
                return frame
            if frame.get("type") == "error":
                self._last_error = frame.get("error") or {}


def _auth_error(error: dict[str, Any], reason: str) -> WarblerAPIError:
    code = str(error.get("code") or reason or "unauthenticated")
    message = str(error.get("message") or "the WebSocket was closed: not authenticated")
    return WarblerAPIError(_STATUS_OF_CODE.get(code, 401), code, message, error.get("details"))
