"""End to end: live delivery over the WebSocket gateway of real server processes, driven through
the SDK (and a raw ``websockets`` client where the protocol itself is under test)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import seed_tenant
from warbler_client import AsyncClient, EventStream, WarblerAPIError

PASSWORD = "correct horse battery"
Frame = dict[str, Any]


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = tmp_path / "data"
    data.mkdir()
    seed = seed_tenant(data, "acme", [("ann", "admin"), ("bob", "member"), ("cat", "member")])
    return data, seed


def as_user(url: str, seed: dict[str, Any], name: str, **options: Any) -> AsyncClient:
    client = AsyncClient(url, token=seed["users"][name]["token"], **options)
    client.user_id = seed["users"][name]["id"]
    return client


async def next_frame(
    stream: EventStream, match: Callable[[Frame], bool], within: float = 5.0
) -> Frame:
    async with asyncio.timeout(within):
        async for frame in stream:
            if match(frame):
                return frame
    raise AssertionError("the stream ended")


def is_message_in(conversation_id: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("event") == "message.new" and f.get("conversation_id") == conversation_id


async def collect_seqs(
    stream: EventStream, conversation_id: str, count: int, within: float
) -> list[int]:
    """The seqs of the next ``count`` new messages, then of any that arrive in a quiet
    half-second after (so a duplicate would show up)."""
    seqs: list[int] = []
    match = is_message_in(conversation_id)
    async with asyncio.timeout(within):
        while len(seqs) < count:
            seqs.append((await next_frame(stream, match, within))["data"]["message"]["seq"])
    with contextlib.suppress(TimeoutError):
        while True:
            seqs.append((await next_frame(stream, match, 0.5))["data"]["message"]["seq"])
    return seqs


async def test_messages_reach_every_member_on_every_device(seeded, server_factory) -> None:
    data, _ = seeded
    server = server_factory(data)
    async with contextlib.AsyncExitStack() as stack:
        ann = await stack.enter_async_context(AsyncClient(server.url))
        bob_phone = await stack.enter_async_context(AsyncClient(server.url))
        bob_laptop = await stack.enter_async_context(AsyncClient(server.url))
        await ann.login("acme", "ann", PASSWORD)
        await bob_phone.login("acme", "bob", PASSWORD, device="phone")
        await bob_laptop.login("acme", "bob", PASSWORD, device="laptop")
        conv = (await ann.open_direct(bob_phone.user_id))["id"]

        ann_s = await stack.enter_async_context(ann.events())
        phone_s = await stack.enter_async_context(bob_phone.events())
        laptop_s = await stack.enter_async_context(bob_laptop.events())

        hi = await ann.send(conv, "hi bob")
        for stream in (phone_s, laptop_s, ann_s):
            frame = await next_frame(stream, is_message_in(conv))
            got = frame["data"]["message"]
            assert (got["id"], got["text"], got["seq"], got["sender_id"]) == (
                hi["id"], "hi bob", hi["seq"], ann.user_id,
            )  # fmt: skip
            assert stream.cursor == frame["id"]

        reply = await bob_laptop.send(conv, "hello ann, from my laptop")
        for stream in (ann_s, phone_s, laptop_s):
            got = (await next_frame(stream, is_message_in(conv)))["data"]["message"]
            assert (got["text"], got["seq"]) == ("hello ann, from my laptop", hi["seq"] + 1)
            assert got["id"] == reply["id"]

        # Typing goes over the socket and reaches the other member as an ephemeral event.
        await phone_s.send_typing(conv)
        typing = await next_frame(ann_s, lambda f: f.get("event") == "typing")
        assert typing["id"] is None
        assert typing["data"] == {"conversation_id": conv, "user_id": bob_phone.user_id,
                                  "state": "typing"}  # fmt: skip
        assert ann_s.cursor is not None and ann_s.reconnects == 0


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 whose open connections the test can sever abruptly (RST),
    the way a dropped Wi-Fi or a NAT timeout breaks a connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        self.cuts += 1
        for pair in list(self._pairs):
            for writer in pair:
                sock = writer.get_extra_info("socket")
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
        self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pair = (writer, up_writer)
        self._pairs.add(pair)
        for task in (self._pipe(reader, up_writer), self._pipe(up_reader, writer)):
            t = asyncio.create_task(task)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


class Burst:
    """Sends ``count`` messages one after another in the background, recording each ack."""

    def __init__(self, client: AsyncClient, conversation_id: str, count: int) -> None:
        self.acks: list[dict[str, Any]] = []
        self._progress = asyncio.Condition()
        self.task = asyncio.create_task(self._run(client, conversation_id, count))

    async def _run(self, client: AsyncClient, conversation_id: str, count: int) -> None:
        for i in range(count):
            message = await client.send(conversation_id, f"message {i}")
            async with self._progress:
                self.acks.append(message)
                self._progress.notify_all()

    async def acked(self, count: int) -> None:
        async with asyncio.timeout(20), self._progress:
            await self._progress.wait_for(lambda: len(self.acks) >= count or self.task.done())

    def seqs(self) -> list[int]:
        return [a["seq"] for a in self.acks]


@pytest.mark.slow
async def test_stream_cut_twice_mid_burst_resumes_with_every_message_once_in_order(
    seeded, server_factory
) -> None:
    data, seed = seeded
    server = server_factory(data)
    async with (
        CuttableProxy(server.port) as proxy,
        as_user(server.url, seed, "ann") as ann,
        as_user(proxy.url, seed, "bob") as bob,  # bob's device sits behind the flaky link
    ):
        conv = (await ann.create_group("burst", [bob.user_id]))["id"]
        async with bob.events() as stream:
            burst = Burst(ann, conv, 100)
            seqs: list[int] = []
            async with asyncio.timeout(30):
                while len(seqs) < 100:
                    frame = await next_frame(stream, is_message_in(conv), within=10)
                    seqs.append(frame["data"]["message"]["seq"])
                    if len(seqs) in (20, 60):
                        proxy.cut()
                        # The stream reconnects when next read; ten more messages are sent
                        # meanwhile, so they can only reach it through the replay.
                        await burst.acked(len(seqs) + 10)
            await burst.task
            seqs += await collect_seqs(stream, conv, 0, within=5)

        assert proxy.cuts == 2 and stream.reconnects == 2
        first = burst.acks[0]["seq"]
        assert burst.seqs() == list(range(first, first + 100))
        assert seqs == list(range(first, first + 100))


@pytest.mark.slow
async def test_stream_resumes_across_a_sigkilled_server_and_sends_are_not_duplicated(
    seeded, server_factory
) -> None:
    data, seed = seeded
    server = server_factory(data)
    # Enough retries to outlast a restart: a send cut off mid-request is retried with its
    # client_msg_id, and must not be stored twice.
    async with (
        as_user(server.url, seed, "ann", max_attempts=30, backoff_max_seconds=0.5) as ann,
        as_user(server.url, seed, "bob") as bob,
    ):
        conv = (await ann.create_group("restart", [bob.user_id]))["id"]
        async with bob.events() as stream:
            burst = Burst(ann, conv, 100)
            await burst.acked(40)
            await asyncio.to_thread(server.kill)
            await asyncio.to_thread(server.start)
            # Sending carries on after the restart, before this device is back.
            await burst.acked(70)
            seqs = await collect_seqs(stream, conv, 100, within=40)
            await burst.task

        assert stream.reconnects >= 1
        first = burst.acks[0]["seq"]
        assert burst.seqs() == list(range(first, first + 100))
        assert seqs == list(range(first, first + 100))
        history = await bob.history(conv, after_seq=first - 1, limit=200)
        assert [m["text"] for m in history["messages"]] == [f"message {i}" for i in range(100)]


async def stalled_socket(server_url: str, token: str) -> ClientConnection:
    """A raw WebSocket whose reader stops: a 4 KiB receive buffer, a one-frame queue and no
    compression, so the server's buffers fill after a few dozen frames, not megabytes."""
    host, port = server_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await connect(
        f"ws://{host}:{port}/api/v1/ws", sock=sock, max_queue=1, compression=None,
        additional_headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


def messages_to_stall(size: int) -> int:
    """How many ``size``-byte messages surely stall a socket that is not read: the kernel
    alone buffers up to tcp_wmem's maximum (4 MiB by default) before the server's writer
    blocks, so send half as much again, plus a margin."""
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 4 * 1024 * 1024
    return (wmem_max * 3 // 2 + 1024 * 1024) // size + 1


@pytest.mark.slow
async def test_slow_consumer_is_cut_off_with_4008_without_delaying_others_then_resumes(
    seeded, server_factory
) -> None:
    data, seed = seeded
    size = 60_000
    server = server_factory(
        data, WARBLER_WS_QUEUE_SIZE="20", WARBLER_MAX_TEXT_CHARS=str(size + 100)
    )
    total = messages_to_stall(size)
    async with (
        as_user(server.url, seed, "ann") as ann,
        as_user(server.url, seed, "bob") as bob,
        as_user(server.url, seed, "cat") as cat,
    ):
        created = await ann.create_group("firehose", [bob.user_id, cat.user_id])
        conv, base = created["id"], created["last_seq"]
        expected = list(range(base + 1, base + total + 1))
        slow = await stalled_socket(server.url, seed["users"]["bob"]["token"])
        hello = json.loads(await slow.recv())
        assert hello["type"] == "hello"
        async with cat.events() as fast:
            fast_rx = asyncio.create_task(collect_seqs(fast, conv, total, within=30))
            # Random (nothing on the way may shrink it) and one search token: a body of
            # thousands of words would spend the test's time in the search index instead.
            body = secrets.token_hex(size // 2)

            async def sender(worker: int) -> None:
                for i in range(worker, total, 4):
                    await ann.send(conv, f"{i} {body}")

            await asyncio.gather(*(sender(w) for w in range(4)))
            # The fast reader has everything while the slow one still has not read a byte.
            fast_seqs = await fast_rx
            assert fast_seqs == expected
            assert fast.reconnects == 0

        # The server let go of the stalled device at once (it was bob's only device), even
        # though the device has not read a byte and its socket is full.
        async with asyncio.timeout(5):
            while (await ann.presence([bob.user_id]))[bob.user_id]["online"]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        # The slow reader wakes up: it gets what was already in its socket, then 4008.
        cursor = hello["cursor"]
        slow_seqs: list[int] = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    frame = json.loads(await slow.recv())
                    if frame.get("type") == "event" and frame["id"] is not None:
                        cursor = frame["id"]
                        if is_message_in(conv)(frame):
                            slow_seqs.append(frame["data"]["message"]["seq"])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
        assert len(slow_seqs) < total

        # Resuming from its cursor, it receives exactly what it missed, in order.
        async with bob.events(cursor=cursor) as resumed:
            missed = await collect_seqs(resumed, conv, total - len(slow_seqs), within=15)
        assert slow_seqs + missed == expected


async def test_heartbeats_and_pings_on_a_raw_socket(seeded, server_factory) -> None:
    data, seed = seeded
    server = server_factory(data, WARBLER_WS_HEARTBEAT_SECONDS="0.2")
    token = seed["users"]["ann"]["token"]
    url = server.url.replace("http://", "ws://") + f"/api/v1/ws?access_token={token}"
    async with connect(url) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["heartbeat_seconds"] == 0.2
        await ws.send(json.dumps({"type": "ping", "ref": "r1"}))
        frames: list[Frame] = []
        async with asyncio.timeout(3):
            while sum(f["type"] == "heartbeat" for f in frames) < 3:
                frames.append(json.loads(await ws.recv()))
        assert {"type": "pong", "ref": "r1"} in frames
        assert {f["type"] for f in frames} == {"heartbeat", "pong"}


async def test_a_bad_token_raises_instead_of_reconnecting_forever(seeded, server_factory) -> None:
    data, _ = seeded
    server = server_factory(data)
    async with AsyncClient(server.url, token="wbt_not-a-real-token") as client:
        stream = client.events()
        with pytest.raises(WarblerAPIError) as err:
            async with asyncio.timeout(5):
                await anext(aiter(stream))
        assert (err.value.status, err.value.code) == (401, "unauthenticated")
        with pytest.raises(StopAsyncIteration):
            await anext(aiter(stream))


async def test_an_unresumable_cursor_yields_resync_required_then_live_events(
    seeded, server_factory
) -> None:
    data, seed = seeded
    server = server_factory(data)
    async with as_user(server.url, seed, "ann") as ann, as_user(server.url, seed, "bob") as bob:
        conv = (await ann.open_direct(bob.user_id))["id"]
        # A cursor from another database (here: from the future) cannot be resumed.
        async with bob.events(cursor=10**9) as stream:
            resync = await next_frame(stream, lambda f: f["type"] == "resync_required")
            assert resync["cursor"] < 10**9 and stream.cursor == resync["cursor"]
            sent = await ann.send(conv, "after the resync")
            frame = await next_frame(stream, is_message_in(conv))
            assert frame["data"]["message"]["id"] == sent["id"]
            assert frame["id"] > resync["cursor"]


async def test_presence_online_and_offline_reach_people_who_share_a_conversation(
    seeded, server_factory
) -> None:
    data, seed = seeded
    server = server_factory(data)
    async with (
        as_user(server.url, seed, "ann") as ann,
        as_user(server.url, seed, "bob") as bob,
        as_user(server.url, seed, "cat") as cat,
    ):
        await ann.open_direct(bob.user_id)  # cat shares nothing with bob
        async with ann.events() as ann_stream, cat.events() as cat_stream:
            await ann_stream.connect()
            await cat_stream.connect()

            def presence_of(status: str) -> Callable[[Frame], bool]:
                return lambda f: f.get("event") == "presence" and f["data"] == {
                    **f["data"], "user_id": bob.user_id, "status": status,
                }  # fmt: skip

            async with bob.events() as bob_stream:
                await bob_stream.connect()
                online = await next_frame(ann_stream, presence_of("online"))
                assert online["id"] is None  # ephemeral: never replayed
                assert (await ann.presence([bob.user_id]))[bob.user_id]["online"] is True
            await next_frame(ann_stream, presence_of("offline"))
            status = (await ann.presence([bob.user_id]))[bob.user_id]
            assert status["online"] is False and status["last_seen"] is not None
            with pytest.raises(TimeoutError):
                await next_frame(cat_stream, lambda f: f.get("event") == "presence", within=0.5)


async def test_websocket_compression_is_off_unless_enabled(seeded, server_factory) -> None:
    data, seed = seeded
    token = seed["users"]["ann"]["token"]
    for env, expected in (({}, False), ({"WARBLER_WS_COMPRESSION": "true"}, True)):
        server = server_factory(data, **env)
        url = server.url.replace("http://", "ws://") + f"/api/v1/ws?access_token={token}"
        async with connect(url) as ws:  # the client offers permessage-deflate
            offered = ws.response.headers.get("sec-websocket-extensions") or ""
            assert ("permessage-deflate" in offered) is expected, offered
        server.stop()
