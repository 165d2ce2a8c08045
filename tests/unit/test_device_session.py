"""A device's frames: written at once while the socket has room, queued in order behind a
full socket, bounded (a device that falls too far behind is cut off), and a close wakes the
handler waiting for its client."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from warbler.bus.base import BusEvent
from warbler.delivery.session import DeviceSession


class Socket:
    """Writes like uvicorn's WebSocket: at once while writable, else after the buffer drains."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.broken = False
        self.grew = asyncio.Event()

    async def write(self, frame: bytes) -> None:
        await self.writable.wait()
        if self.broken:
            raise OSError("connection lost")
        self.frames.append(frame)
        self.grew.set()

    def ids(self) -> list[int]:
        return [orjson.loads(f)["id"] for f in self.frames if b'"type":"event"' in f]


def _event(i: int) -> BusEvent:
    return BusEvent(type="message.new", tenant_id="t", data={"n": i}, id=i, conversation_id="c")


def _wire(i: int) -> bytes:
    return orjson.dumps(_event(i).to_wire())


def _live(socket: Socket, queue_size: int = 10) -> DeviceSession:
    session = DeviceSession(tenant_id="t", user_id="u", queue_size=queue_size, socket=socket)
    session.go_live(0)
    return session


async def _settle(socket: Socket, count: int) -> None:
    async with asyncio.timeout(1):
        while len(socket.frames) < count:
            socket.grew.clear()
            await socket.grew.wait()


async def test_a_live_device_with_room_gets_each_frame_written_at_once_without_a_task():
    socket = Socket()
    session = _live(socket)
    tasks = len(asyncio.all_tasks())
    for i in range(1, 4):
        session.offer(_event(i), _wire(i))
        assert socket.ids() == list(range(1, i + 1))  # written before offer() returned
    session.send_control({"type": "heartbeat"})
    assert orjson.loads(socket.frames[-1]) == {"type": "heartbeat"}
    assert len(asyncio.all_tasks()) == tasks


async def test_frames_behind_a_full_socket_wait_in_order_and_none_overtakes_them():
    socket = Socket()
    session = _live(socket)
    socket.writable.clear()
    for i in range(1, 6):  # 1 waits for the socket, 2..5 queue behind it
        session.offer(_event(i), _wire(i))
    await asyncio.sleep(0.01)  # the writer task is waiting for the socket
    assert socket.frames == []
    socket.writable.set()
    session.offer(_event(6), _wire(6))  # the socket has room again, but 2..5 are still queued
    await _settle(socket, 6)
    assert socket.ids() == [1, 2, 3, 4, 5, 6]
    session.offer(_event(7), _wire(7))  # drained: written at once again
    assert socket.ids()[-1] == 7


async def test_an_overflowing_device_is_closed_as_a_slow_consumer_and_its_queue_dropped():
    socket = Socket()
    session = _live(socket, queue_size=10)
    socket.writable.clear()
    for i in range(1, 12):  # one in flight and ten queued
        session.offer(_event(i), _wire(i))
    assert session.close_reason is None
    session.offer(_event(12), _wire(12))
    assert session.close_reason == "slow_consumer"
    socket.writable.set()
    await asyncio.sleep(0.01)
    assert socket.frames == []  # it resumes by cursor; nothing more is written
    session.offer(_event(13), _wire(13))
    assert socket.frames == []


async def test_events_buffered_during_replay_skip_what_the_replay_already_sent():
    socket = Socket()
    session = DeviceSession(tenant_id="t", user_id="u", queue_size=10, socket=socket)
    for i in (3, 4, 5):
        session.offer(_event(i), _wire(i))
    session.send_control({"type": "heartbeat"})
    assert socket.frames == []  # nothing overtakes the replay, which the handler writes
    session.go_live(replayed_up_to=4)
    assert [orjson.loads(f).get("id") for f in socket.frames] == [None, 5]


async def test_a_close_wakes_the_handler_waiting_for_its_client():
    session = _live(Socket())
    never: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, str]:
        return await never

    handler = asyncio.create_task(session.from_client(receive))
    await asyncio.sleep(0)
    session.close("shutdown")
    assert await asyncio.wait_for(handler, 1) is None
    assert not handler.cancelled()
    assert await session.from_client(receive) is None  # closed: it does not wait again


async def test_cancelling_the_handler_from_elsewhere_still_cancels_it():
    session = _live(Socket())
    never: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, str]:
        return await never

    handler = asyncio.create_task(session.from_client(receive))
    await asyncio.sleep(0)
    handler.cancel()
    session.close("shutdown")  # both: the outside cancellation wins
    with pytest.raises(asyncio.CancelledError):
        await handler


async def test_a_socket_that_fails_under_a_write_closes_the_session():
    socket = Socket()
    session = _live(socket)
    socket.writable.clear()
    session.offer(_event(1), _wire(1))
    session.offer(_event(2), _wire(2))
    await asyncio.sleep(0.01)
    socket.broken = True
    socket.writable.set()
    await asyncio.sleep(0.01)
    assert session.close_reason == "disconnected"
    assert socket.frames == []


async def test_closing_a_device_stuck_on_a_full_socket_stops_its_writer():
    socket = Socket()
    session = _live(socket)
    socket.writable.clear()
    session.offer(_event(1), _wire(1))
    session.offer(_event(2), _wire(2))
    writers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert len(writers) == 1
    session.close("erased")
    await asyncio.sleep(0.01)
    assert writers[0].done()
    socket.writable.set()
    await asyncio.sleep(0.01)
    assert socket.frames == []
