"""One connected device: its frames, in order, written to the socket at once when the socket has
room, else queued (bounded) behind what already waits; and the handler's wait for its client."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Protocol, TypeVar

import orjson

from warbler.bus.base import BusEvent
from warbler.ids import new_id

T = TypeVar("T")


class FrameSocket(Protocol):
    """The device's end of the transport: writes one encoded frame."""

    def write(self, frame: bytes) -> Awaitable[None]: ...


class DeviceSession:
    """While the stream replays what the device's cursor missed, live events wait in a buffer.
    Once live, a frame is written to the socket straight from the caller (the hub fanning an
    event out, the heartbeat), with no task and no wake-up, when nothing is queued before it
    and the socket takes it without waiting; otherwise it joins the outbox, which a writer task
    started for the purpose drains. A full outbox means the device is too slow: it is cut off
    (and told why) instead of slowing anyone else down; it resumes by cursor.

    Frames therefore go out in the order they were offered: a frame is written directly only
    when no frame is queued or still being written. What a slow socket holds is bounded: the
    transport's own buffer (the server stops taking writes above its high-water mark, so the
    next write waits), one frame in flight and ``queue_size`` queued frames.
    """

    __slots__ = (
        "_limit",
        "_outbox",
        "_reader",
        "_replay",
        "_socket",
        "_writer",
        "close_reason",
        "id",
        "tenant_id",
        "user_id",
    )

    def __init__(
        self, *, tenant_id: str, user_id: str, queue_size: int, socket: FrameSocket
    ) -> None:
        self.id = new_id()
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.close_reason: str | None = None
        self._limit = queue_size
        self._socket = socket
        # Live events that arrive while the replay runs; None once live.
        self._replay: list[BusEvent] | None = []
        # Frames waiting for the socket (made when first needed: most devices never wait).
        self._outbox: deque[bytes] | None = None
        # The task writing the outbox, while a frame is in flight or queued.
        self._writer: asyncio.Task[None] | None = None
        # The handler task while it waits for its client, so that a close can wake it.
        self._reader: asyncio.Task[Any] | None = None

    # -- frames in -------------------------------------------------------------------------

    def offer(self, event: BusEvent, wire: bytes) -> None:
        """Called by the hub for every event this device should see. Never blocks."""
        if self.close_reason is not None:
            return
        if self._replay is not None:
            if len(self._replay) >= self._limit:
                self._overflow()
            else:
                self._replay.append(event)
            return
        self._push(wire)

    def go_live(self, replayed_up_to: int) -> None:
        """End the replay phase: send buffered live events the replay did not already send,
        after the control frames queued meanwhile."""
        buffered, self._replay = self._replay, None
        if self.close_reason is not None or buffered is None:
            return
        waiting, self._outbox = self._outbox, None
        for frame in waiting or ():
            self._push(frame)
        for event in buffered:
            if event.id is None or event.id > replayed_up_to:
                self._push(encode(event.to_wire()))

    def send_control(self, message: dict[str, Any]) -> None:
        self.send_encoded(encode(message))

    def send_encoded(self, frame: bytes) -> None:
        if self.close_reason is None:
            if self._replay is not None:
                self._enqueue(frame)  # after the replay, which the handler is writing
            else:
                self._push(frame)

    # -- closing ---------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """Stop sending (queued frames are dropped: the device resumes by cursor) and wake the
        handler if it is waiting for its client, so that it says goodbye with ``reason``."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self._replay = None
        self._outbox = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.cancel()  # it may be stuck on a full socket
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.cancel()

    async def from_client(self, receive: Callable[[], Awaitable[T]]) -> T | None:
        """The handler task's wait for its client's next message; ``None`` once the session
        is closed, whether before or during the wait (a close interrupts it)."""
        if self.close_reason is not None:
            return None
        task = asyncio.current_task()
        self._reader = task
        try:
            return await receive()
        except asyncio.CancelledError:
            # Ours only if close() cleared _reader, and nobody else cancelled the task too.
            if self.close_reason is None or self._reader is not None or task is None:
                raise
            if task.uncancel() > 0:
                raise
            return None
        finally:
            self._reader = None

    # -- writing ---------------------------------------------------------------------------

    def _push(self, frame: bytes) -> None:
        if self._writer is not None:
            self._enqueue(frame)  # behind frames still queued or in flight
            return
        try:
            rest = _run_until_it_waits(self._socket.write(frame))
        except Exception:  # the socket is gone; the handler hears it from its client side
            self.close("disconnected")
            return
        if rest is not None:
            self._writer = asyncio.create_task(self._drain(rest))

    def _enqueue(self, frame: bytes) -> None:
        if self._outbox is None:
            self._outbox = deque()
        if len(self._outbox) >= self._limit:
            self._overflow()
        else:
            self._outbox.append(frame)

    async def _drain(self, in_flight: Awaitable[None]) -> None:
        try:
            await in_flight
            while self._outbox:
                await self._socket.write(self._outbox.popleft())
        except Exception:  # the socket is gone
            self._writer = None
            self.close("disconnected")
        finally:
            if self._writer is asyncio.current_task():
                self._writer = None

    def _overflow(self) -> None:
        self.close("slow_consumer")


def _run_until_it_waits(awaitable: Awaitable[None]) -> Awaitable[None] | None:
    """Run ``awaitable`` here, in the caller's stack, until it first has to wait: ``None`` if
    it finished without waiting (a socket write that had room), else an awaitable that
    finishes it, for a task to await. An exception raised before it waits propagates.

    This is what a task created with ``eager_start`` does (Python 3.12): most writes complete
    at once, and a task per write would cost a scheduling round trip each."""
    steps = awaitable.__await__()
    try:
        waits_on = steps.send(None)
    except StopIteration:
        return None
    return _Resumed(steps, waits_on)


class _Resumed:
    """The rest of an awaitable started by ``_run_until_it_waits``, driven as a task drives a
    coroutine: wait for the future it yielded, then resume it with the outcome."""

    __slots__ = ("_steps", "_waits_on")

    def __init__(self, steps: Generator[Any, None, None], waits_on: Any) -> None:
        self._steps = steps
        self._waits_on = waits_on

    def __await__(self) -> Generator[Any, None, None]:
        return self._drive().__await__()

    async def _drive(self) -> None:
        steps, waits_on = self._steps, self._waits_on
        while True:
            error: BaseException | None = None
            try:
                if waits_on is None:  # a bare yield (asyncio.sleep(0)): let the loop run once
                    await asyncio.sleep(0)
                else:
                    # A future yielded by an await is marked "blocking" until the task that
                    # receives it takes it over; this is that task, so take it over.
                    waits_on._asyncio_future_blocking = False
                    await waits_on
            except (Exception, asyncio.CancelledError) as exc:
                error = exc  # the future failed, or this task was cancelled: pass it on
            try:
                waits_on = steps.send(None) if error is None else steps.throw(error)
            except StopIteration:
                return


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)
