"""The Redis event bus against a real Redis: two nodes see each other's events, in order;
Redis going away delays delivery but never blocks or breaks a node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.services import RedisService
from warbler.bus.base import BusEvent
from warbler.bus.redis import RedisBus, redis_client


@pytest.fixture
async def make_bus(prefix: str) -> AsyncIterator[Callable[..., Any]]:
    """Starts a bus ("a node") on its own client; every bus and client is closed at teardown."""
    made: list[tuple[RedisBus, Any]] = []

    async def make(url: str, node: str, start: bool = True, **options: Any) -> RedisBus:
        client = redis_client(url)
        options.setdefault("backoff_cap", 0.2)
        bus = RedisBus(client, prefix=prefix, node_id=node, **options)
        made.append((bus, client))
        if start:
            await bus.start()
        return bus

    yield make
    for bus, client in made:
        await bus.stop()
        await client.aclose()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("redis-bus")]


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def event(n: int, node: str) -> BusEvent:
    """An event with every field set, tuples included."""
    return BusEvent(
        type="message.created",
        tenant_id="ten",
        data={"n": n, "node": node, "text": "你好", "nested": {"ok": True, "list": [1, 2.5]}},
        id=n,
        conversation_id=f"c{n}",
        target_user_id="target",
        skip_user_id="skip",
        joined_user_ids=("u1", "u2"),
        left_user_ids=("u3",),
        audience_conversation_ids=("c1", "c2"),
    )


async def test_two_nodes_receive_each_others_events_in_publish_order(redis_service, make_bus):
    a = await make_bus(redis_service.url, "a")
    b = await make_bus(redis_service.url, "b")
    seen_a: list[BusEvent] = []
    seen_b: list[BusEvent] = []
    a.subscribe(seen_a.append)
    b.subscribe(seen_b.append)
    sent_a = [event(n, "a") for n in range(100)]
    sent_b = [event(n, "b") for n in range(100, 200)]
    for ea, eb in zip(sent_a, sent_b, strict=True):
        a.publish(ea)
        b.publish(eb)
    await eventually(lambda: len(seen_a) == 200 and len(seen_b) == 200)
    # Each node's events arrive whole (every field, tuples as tuples) and in publish order,
    # and each node sees its own events exactly once.
    assert [e for e in seen_b if e.data["node"] == "a"] == sent_a
    assert [e for e in seen_a if e.data["node"] == "b"] == sent_b
    assert [e for e in seen_a if e.data["node"] == "a"] == sent_a
    assert [e for e in seen_b if e.data["node"] == "b"] == sent_b
    assert isinstance(seen_b[0].joined_user_ids, tuple)


async def test_own_events_reach_local_handlers_during_publish(redis_service, make_bus):
    a = await make_bus(redis_service.url, "a")
    b = await make_bus(redis_service.url, "b")
    seen_a: list[BusEvent] = []
    a.subscribe(seen_a.append)
    b.subscribe(lambda e: None)
    a.publish(event(1, "a"))
    assert seen_a == [event(1, "a")]  # synchronously, before publish() returned
    # Once a later event from b has come through Redis, a's own message has too: not twice.
    b.publish(event(2, "b"))
    await eventually(lambda: len(seen_a) == 2)
    await asyncio.sleep(0.1)
    assert [e.id for e in seen_a] == [1, 2]


async def test_ephemeral_event_with_defaults_round_trips(redis_service, make_bus):
    a = await make_bus(redis_service.url, "a")
    b = await make_bus(redis_service.url, "b")
    seen: list[BusEvent] = []
    b.subscribe(seen.append)
    typing = BusEvent(type="typing", tenant_id="ten", data={"state": "typing"})
    a.publish(typing)
    await eventually(lambda: len(seen) == 1)
    assert seen == [typing]


async def test_a_failing_handler_does_not_stop_the_others(redis_service, make_bus, caplog):
    a = await make_bus(redis_service.url, "a")
    b = await make_bus(redis_service.url, "b")
    seen: list[int | None] = []

    def broken(e: BusEvent) -> None:
        raise RuntimeError("boom")

    b.subscribe(broken)
    b.subscribe(lambda e: seen.append(e.id))
    a.publish(event(1, "a"))
    a.publish(event(2, "a"))
    await eventually(lambda: seen == [1, 2])
    assert "event handler failed" in caplog.text


async def test_malformed_messages_on_the_channel_are_ignored(redis_service, make_bus, caplog):
    a = await make_bus(redis_service.url, "a")
    b = await make_bus(redis_service.url, "b")
    seen: list[int | None] = []
    b.subscribe(lambda e: seen.append(e.id))
    await a.client.publish(b.channel, b"not json")
    await a.client.publish(b.channel, b'{"origin": "x", "event": {"type": "no tenant"}}')
    a.publish(event(7, "a"))
    await eventually(lambda: seen == [7])
    assert "malformed message" in caplog.text


async def test_publish_never_blocks_while_redis_is_down(own_redis, make_bus, caplog):
    a = await make_bus(own_redis.url, "a", backlog=50)
    seen_a: list[BusEvent] = []
    a.subscribe(seen_a.append)
    own_redis.terminate()
    started = time.perf_counter()
    for n in range(500):
        a.publish(event(n, "a"))
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5
    # Local devices still get every event; the backlog for Redis keeps only the newest.
    assert len(seen_a) == 500
    assert a.backlog <= 50
    assert a.dropped >= 450
    assert caplog.text.count("backlog is full") == 1  # throttled, not once per event


async def test_after_a_redis_restart_delivery_resumes_and_on_reconnect_fires(own_redis, make_bus):
    a = await make_bus(own_redis.url, "a")
    b = await make_bus(own_redis.url, "b")
    seen_b: list[int | None] = []
    b.subscribe(lambda e: seen_b.append(e.id))
    # Registered after b's first subscription: they count reconnections only.
    calls = {"sync": 0, "async": 0}

    def reread_now() -> None:
        calls["sync"] += 1

    async def reread_later() -> None:
        await asyncio.sleep(0)
        calls["async"] += 1

    b.on_reconnect(reread_now)
    b.on_reconnect(reread_later)
    a.publish(event(1, "a"))
    await eventually(lambda: seen_b == [1])

    own_redis.terminate()
    await eventually(lambda: not b.subscribed)
    a.publish(event(2, "a"))  # while Redis is down: waits in a's backlog
    own_redis.restart()

    await eventually(lambda: b.subscribed and calls["sync"] >= 1 and calls["async"] >= 1)
    a.publish(event(3, "a"))
    # Event 2 may have been published before b resubscribed (then the database covers it,
    # via on_reconnect); event 3, published after both are back, always arrives.
    await eventually(lambda: 3 in seen_b)
    assert seen_b[0] == 1 and seen_b[-1] == 3
    assert a.backlog == 0


async def test_a_node_starts_while_redis_is_down_and_connects_when_it_appears(own_redis, make_bus):
    own_redis.terminate()
    started = time.perf_counter()
    a = await make_bus(own_redis.url, "a", start_timeout=0.3)
    assert time.perf_counter() - started < 2
    assert not a.subscribed
    seen: list[int | None] = []
    a.subscribe(lambda e: seen.append(e.id))
    a.publish(event(1, "a"))
    assert seen == [1]
    reconnected: list[bool] = []
    a.on_reconnect(lambda: reconnected.append(True))

    own_redis.restart()  # the first start of this port's server, as far as the bus knows
    b = await make_bus(own_redis.url, "b")
    seen_b: list[int | None] = []
    b.subscribe(lambda e: seen_b.append(e.id))
    await eventually(lambda: a.subscribed and reconnected == [True] and a.backlog == 0)
    a.publish(event(2, "a"))
    await eventually(lambda: 2 in seen_b)


async def test_stop_flushes_queued_events_and_leaves_no_tasks(redis_service, make_bus, caplog):
    a = await make_bus(redis_service.url, "a")
    b = await make_bus(redis_service.url, "b")
    seen_b: list[int | None] = []
    b.subscribe(lambda e: seen_b.append(e.id))
    for n in range(300):
        a.publish(event(n, "a"))
    await a.stop()  # the make_bus teardown checks that no bus task is left running
    assert a.backlog == 0
    await eventually(lambda: len(seen_b) == 300)
    with caplog.at_level(logging.WARNING):
        await a.stop()  # stopping twice is harmless
    assert "Traceback" not in caplog.text


@contextlib.contextmanager
def hung(service: RedisService) -> Iterator[None]:
    """Freeze the Redis process: connections stay open and nothing answers (a hung server or
    a network that drops packets), until the block ends."""
    assert service.process is not None
    os.kill(service.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(service.process.pid, signal.SIGCONT)


async def test_a_hung_redis_is_noticed_and_the_bus_reconnects_when_it_answers(own_redis, make_bus):
    a = await make_bus(own_redis.url, "a", ping_interval=0.3)
    b = await make_bus(own_redis.url, "b", ping_interval=0.3)
    seen_b: list[int | None] = []
    b.subscribe(lambda e: seen_b.append(e.id))
    reconnects: list[bool] = []
    b.on_reconnect(lambda: reconnects.append(True))
    with hung(own_redis):
        # No error reaches the bus: only the missing answer to its PING tells it.
        await eventually(lambda: not b.subscribed, within=5)
        started = time.perf_counter()
        a.publish(event(1, "a"))
        assert time.perf_counter() - started < 0.1
    await eventually(lambda: b.subscribed and reconnects, within=20)
    await eventually(lambda: a.backlog == 0, within=20)
    a.publish(event(2, "a"))
    await eventually(lambda: 2 in seen_b)
