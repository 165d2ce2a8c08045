"""One connected device: a bounded outbox drained by its transport's writer task."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from warbler.bus.base import BusEvent
from warbler.ids import new_id


class DeviceSession:
    """Events queue here; the transport sends them. A full queue means the device is too slow:
    it is cut off (and told why) instead of slowing anyone else down; it resumes by cursor.
    """

    def __init__(self, *, tenant_id: str, user_id: str, queue_size: int) -> None:
        self.id = new_id()
        self.tenant_id = tenant_id
        self.user_id = user_id
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_size)
        self._buffering = True
        self._buffer: list[BusEvent] = []
        self._buffer_limit = queue_size
        self.close_reason: str | None = None
        # Set on close, so the transport can stop at once even while its writer is blocked
        # on a full socket (a slow consumer's writer never reads the close sentinel).
        self.closed = asyncio.Event()

    def offer(self, event: BusEvent, wire: bytes) -> None:
        """Called by the hub for every event this device should see. Never blocks."""
        if self.close_reason is not None:
            return
        if self._buffering:
            if len(self._buffer) >= self._buffer_limit:
                self._overflow()
            else:
                self._buffer.append(event)
            return
        try:
            self._queue.put_nowait(wire)
        except asyncio.QueueFull:
            self._overflow()

    def go_live(self, replayed_up_to: int) -> None:
        """End the replay phase: queue buffered live events the replay did not already send."""
        self._buffering = False
        buffered, self._buffer = self._buffer, []
        for event in buffered:
            if event.id is None or event.id > replayed_up_to:
                self.offer(event, encode(event.to_wire()))

    def send_control(self, message: dict[str, Any]) -> None:
        self.send_encoded(encode(message))

    def send_encoded(self, frame: bytes) -> None:
        if self.close_reason is not None:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._overflow()

    async def next_frame(self) -> bytes | None:
        """The next frame to send, or ``None`` when the session must close."""
        return await self._queue.get()

    def close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self._drain()
            self._queue.put_nowait(None)
            self.closed.set()

    def _overflow(self) -> None:
        self.close("slow_consumer")

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)
