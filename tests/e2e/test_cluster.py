"""Several identical nodes on one PostgreSQL and one Redis: real-time chat across nodes, order
under concurrent senders, a Redis restart, a killed node, and its jobs moving on."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, seed_tenant
from tests.services import RedisService, start_redis
from warbler.security.crypto import new_key_text
from warbler_client import AsyncClient, EventStream

pytestmark = pytest.mark.slow

USERS = [("ann", "admin"), ("s1", "member"), ("s2", "member"), ("s3", "member"),
         ("s4", "member"), ("r1", "member"), ("r2", "member")]  # fmt: skip


@dataclass
class Cluster:
    tmp: Path
    database_url: str
    redis: RedisService
    seed: dict[str, Any]
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}:")
    # Every node needs the same master key: it wraps the tenants' data keys.
    secret_key: str = field(default_factory=new_key_text)
    nodes: list[ServerProcess] = field(default_factory=list)

    def start_node(self, name: str) -> ServerProcess:
        data = self.tmp / name
        data.mkdir(exist_ok=True)
        node = ServerProcess(
            data,
            env_extra={
                "WARBLER_DATABASE_URL": self.database_url,
                "WARBLER_REDIS_URL": self.redis.url,
                "WARBLER_REDIS_PREFIX": self.prefix,
                "WARBLER_NODE_ID": name,
                "WARBLER_SECRET_KEY": self.secret_key,
                "WARBLER_JOB_LEASE_SECONDS": "3",
                "WARBLER_JOB_POLL_SECONDS": "0.2",
                "WARBLER_WEBHOOK_TIMEOUT_SECONDS": "30",
            },
        )
        node.start()
        self.nodes.append(node)
        return node

    def client(self, node_url: str, name: str) -> AsyncClient:
        user = self.seed["users"][name]
        c = AsyncClient(node_url, token=user["token"])
        c.user_id = user["id"]  # type: ignore[attr-defined]
        return c

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _make_cluster(tmp_path: Path, postgres_url: str, redis: RedisService) -> Cluster:
    key = new_key_text()
    seed = seed_tenant(tmp_path / "seed", "acme", USERS, database_url=postgres_url, secret_key=key)
    return Cluster(tmp_path, postgres_url, redis, seed, secret_key=key)


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, redis_service: RedisService) -> Iterator[Cluster]:
    c = _make_cluster(tmp_path, postgres_url, redis_service)
    yield c
    c.stop()


@pytest.fixture
def own_redis_cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    """A cluster on a Redis of its own, which the test may restart."""
    redis = start_redis(own=True)
    c = _make_cluster(tmp_path, postgres_url, redis)
    yield c
    c.stop()
    redis.terminate()


class RoundRobinProxy:
    """A TCP load balancer on 127.0.0.1: each new connection goes to the next backend that
    accepts it, as nginx's round robin with a failed upstream skipped."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self._next = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> RoundRobinProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.ports)):
            port = self.ports[self._next % len(self.ports)]
            self._next += 1
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            writer.close()
            return
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst, (writer, up_writer)))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(
        src: asyncio.StreamReader, dst: asyncio.StreamWriter, both: tuple[asyncio.StreamWriter, ...]
    ) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for w in both:  # one side gone: the connection is gone
                w.close()


async def collect(
    stream: EventStream, conversation_id: str, count: int, within: float
) -> list[int]:
    """Seqs of the next ``count`` new messages in a conversation, in arrival order, plus any
    that arrive in a quiet second after (a duplicate would show up)."""
    seqs: list[int] = []

    async def more(deadline: float) -> None:
        async with asyncio.timeout(deadline):
            async for frame in stream:
                if (
                    frame.get("event") == "message.new"
                    and frame["conversation_id"] == conversation_id
                ):
                    seqs.append(frame["data"]["message"]["seq"])
                    if len(seqs) >= count:
                        return

    await more(within)
    with contextlib.suppress(TimeoutError):
        await more(1.0)
    return seqs


async def _group(cluster: Cluster, url: str) -> tuple[str, int]:
    async with cluster.client(url, "ann") as ann:
        members = [cluster.seed["users"][n]["id"] for n, _ in USERS if n != "ann"]
        created = await ann.create_group("cluster", members)
    return created["id"], created["last_seq"]


async def test_members_on_two_nodes_chat_live_and_see_2000_messages_from_4_senders_in_one_order(
    cluster: Cluster,
) -> None:
    n1, n2 = cluster.start_node("n1"), cluster.start_node("n2")
    conv, base = await _group(cluster, n1.url)
    async with (
        cluster.client(n1.url, "r1") as r1,
        cluster.client(n2.url, "r2") as r2,
        r1.events() as on_n1,
        r2.events() as on_n2,
    ):
        await on_n1.connect()
        await on_n2.connect()
        # Real time across nodes, both ways.
        async with cluster.client(n1.url, "s1") as s1, cluster.client(n2.url, "s3") as s3:
            t0 = time.monotonic()
            await s1.send(conv, "hello from node 1")
            assert await collect(on_n2, conv, 1, within=3) == [base + 1]
            await s3.send(conv, "hello from node 2")
            assert await collect(on_n1, conv, 2, within=3) == [base + 1, base + 2]
            assert await collect(on_n2, conv, 1, within=3) == [base + 2]
            assert time.monotonic() - t0 < 8
            # Presence and typing cross nodes too.
            status = await s1.presence([r2.user_id])  # type: ignore[attr-defined]
            assert status[r2.user_id]["online"] is True  # type: ignore[attr-defined]
            await s3.typing(conv)
            async with asyncio.timeout(3):
                async for frame in on_n1:
                    if frame.get("event") == "typing":
                        assert frame["data"]["user_id"] == s3.user_id  # type: ignore[attr-defined]
                        break
        base += 2

        per_sender, senders = 500, [("s1", n1), ("s2", n1), ("s3", n2), ("s4", n2)]
        total = per_sender * len(senders)

        async def send_all(name: str, node: ServerProcess) -> None:
            async with cluster.client(node.url, name) as c:
                for i in range(per_sender):
                    await c.send(conv, f"{name} {i}", client_msg_id=f"{name}-{i}")

        readers = [asyncio.create_task(collect(s, conv, total, within=120)) for s in (on_n1, on_n2)]
        await asyncio.gather(*(send_all(n, node) for n, node in senders))
        seen_on_n1, seen_on_n2 = await asyncio.gather(*readers)

    expected = list(range(base + 1, base + total + 1))
    assert seen_on_n1 == expected  # every message, gap-free, each once, in seq order
    assert seen_on_n2 == expected
    async with cluster.client(n2.url, "r2") as r2:
        page = await r2.history(conv, after_seq=base, limit=200)
        assert [m["seq"] for m in page["messages"]] == expected[:200]


async def test_a_redis_restart_during_traffic_loses_nothing_and_live_delivery_comes_back(
    own_redis_cluster: Cluster,
) -> None:
    cluster = own_redis_cluster
    n1, n2 = cluster.start_node("n1"), cluster.start_node("n2")
    conv, base = await _group(cluster, n1.url)
    total = 300
    async with (
        cluster.client(n2.url, "r2") as r2,
        r2.events() as on_n2,
        cluster.client(n1.url, "s1") as s1,
    ):
        await on_n2.connect()
        reader = asyncio.create_task(collect(on_n2, conv, total, within=60))
        for i in range(total):
            if i == total // 3:
                await asyncio.to_thread(cluster.redis.restart)
            await s1.send(conv, f"through a restart {i}", client_msg_id=f"rr-{i}")
            await asyncio.sleep(0.005)
        assert await reader == list(range(base + 1, base + total + 1))

        # Live delivery is back by itself: a new message arrives within seconds, not by a poll
        # of the client (the stream was never reconnected).
        t0 = time.monotonic()
        await s1.send(conv, "after the storm")
        assert await collect(on_n2, conv, 1, within=5) == [base + total + 1]
        assert time.monotonic() - t0 < 5
        assert on_n2.reconnects == 0


async def test_clients_of_a_killed_node_reconnect_to_another_and_miss_nothing(
    cluster: Cluster,
) -> None:
    n1, n2 = cluster.start_node("n1"), cluster.start_node("n2")
    conv, base = await _group(cluster, n1.url)
    total = 300
    async with RoundRobinProxy([n1.port, n2.port]) as lb:
        async with (
            cluster.client(lb.url, "r1") as r1,
            cluster.client(lb.url, "r2") as r2,
            r1.events() as first,
            r2.events() as second,
            cluster.client(n2.url, "s3") as sender,
        ):
            await first.connect()
            await second.connect()
            readers = [
                asyncio.create_task(collect(s, conv, total, within=60)) for s in (first, second)
            ]
            for i in range(total):
                if i == total // 3:
                    n1.kill()
                await sender.send(conv, f"through a crash {i}", client_msg_id=f"kc-{i}")
            seen = await asyncio.gather(*readers)
            assert first.reconnects + second.reconnects >= 1  # one of them was on node 1
    expected = list(range(base + 1, base + total + 1))
    assert seen == [expected, expected]


class HangingReceiver:
    """A webhook receiver whose first request hangs (the node handling it will be killed);
    later requests succeed. Records every delivery id."""

    def __init__(self) -> None:
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        self.deliveries: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.deliveries.append(self.headers.get("x-warbler-delivery", ""))
                if len(receiver.deliveries) == 1:
                    receiver.first_arrived.set()
                    receiver.release.wait(30)
                    self.send_response(500)
                else:
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HangingReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


async def test_the_jobs_of_a_killed_node_are_picked_up_by_another(cluster: Cluster) -> None:
    n1 = cluster.start_node("n1")
    conv, _ = await _group(cluster, n1.url)
    ann = cluster.seed["users"]["ann"]
    headers = {"Authorization": f"Bearer {ann['token']}"}
    with HangingReceiver() as receiver:
        async with httpx.AsyncClient(base_url=n1.api, headers=headers) as api:
            r = await api.post(
                "/webhooks", json={"url": receiver.url, "event_types": ["message.new"]}
            )
            assert r.status_code == 201, r.text
            hook = r.json()["id"]
            await api.post(f"/conversations/{conv}/messages", json={"text": "deliver me"})
        # Node 1 took the delivery and is stuck in it when it dies.
        assert await asyncio.to_thread(receiver.first_arrived.wait, 10)
        n2 = cluster.start_node("n2")
        n1.kill()
        deadline = time.monotonic() + 20
        while len(receiver.deliveries) < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert len(receiver.deliveries) == 2, "node 2 did not take over the delivery"
        assert receiver.deliveries[0] == receiver.deliveries[1]  # the same delivery, again
        async with httpx.AsyncClient(base_url=n2.api, headers=headers) as api:
            for _ in range(50):
                listing = (await api.get(f"/webhooks/{hook}/deliveries")).json()
                if listing and listing[0]["status"] == "done":
                    break
                await asyncio.sleep(0.1)
            assert listing[0]["status"] == "done" and listing[0]["attempts"] == 2
