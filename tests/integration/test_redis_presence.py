"""Presence in Redis against a real Redis: a user is online while any device on any live node
is connected; a dead node stops counting once its heartbeat expires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from warbler.bus.redis import redis_client
from warbler.im.presence_redis import RedisPresenceStore

T = "tenant1"


@pytest.fixture
async def make_store(prefix: str) -> AsyncIterator[Callable[..., Any]]:
    """A presence store for one node, on its own client; stopped and closed at teardown."""
    made: list[RedisPresenceStore] = []

    async def make(url: str, node: str, start: bool = True, **options: Any) -> RedisPresenceStore:
        store = RedisPresenceStore(redis_client(url), prefix=prefix, node_id=node, **options)
        made.append(store)
        if start:
            await store.start()
        return store

    yield make
    for store in made:
        await store.stop()
        await store.client.aclose()


async def devices(store: RedisPresenceStore, user: str) -> int:
    return int((await store.status(T, [user]))[user]["devices"])


async def devices_become(
    store: RedisPresenceStore, user: str, expected: int, within: float = 10.0
) -> None:
    deadline = time.monotonic() + within
    while (count := await devices(store, user)) != expected:
        assert time.monotonic() < deadline, f"{user} has {count} devices, not {expected}"
        await asyncio.sleep(0.05)


async def test_online_with_the_first_device_on_any_node_offline_after_the_last(
    redis_service, make_store
):
    n1 = await make_store(redis_service.url, "n1")
    n2 = await make_store(redis_service.url, "n2")
    assert await n1.connected(T, "ann") is True  # came online
    assert await n2.connected(T, "ann") is False  # already online elsewhere
    assert await n2.connected(T, "ann") is False
    for store in (n1, n2):
        status = await store.status(T, ["ann", "bo"])
        assert status["ann"]["online"] is True and status["ann"]["devices"] == 3
        assert status["bo"] == {"online": False, "devices": 0, "last_seen": None}

    assert await n1.disconnected(T, "ann") is False  # still on n2
    assert await n2.disconnected(T, "ann") is False
    assert await n2.disconnected(T, "ann") is True  # the last device anywhere
    status = (await n1.status(T, ["ann"]))["ann"]
    assert status["online"] is False and status["devices"] == 0
    assert isinstance(status["last_seen"], datetime)
    assert datetime.now(UTC) - status["last_seen"] < timedelta(seconds=5)
    # Another tenant's user with the same id is someone else.
    assert (await n1.status("tenant2", ["ann"]))["ann"]["last_seen"] is None


async def test_concurrent_connects_on_two_nodes_announce_online_exactly_once(
    redis_service, make_store
):
    n1 = await make_store(redis_service.url, "n1")
    n2 = await make_store(redis_service.url, "n2")
    came = await asyncio.gather(*[s.connected(T, "ann") for _ in range(25) for s in (n1, n2)])
    assert came.count(True) == 1
    assert await devices(n1, "ann") == 50
    went = await asyncio.gather(*[s.disconnected(T, "ann") for _ in range(25) for s in (n1, n2)])
    assert went.count(True) == 1
    assert await devices(n2, "ann") == 0


async def test_a_node_whose_heartbeat_expires_no_longer_counts(redis_service, make_store):
    # n1 beats once and then "dies": its heartbeat is never refreshed.
    n1 = await make_store(redis_service.url, "n1", start=False, ttl=0.5)
    await n1.beat()
    n2 = await make_store(redis_service.url, "n2", ttl=0.5)
    assert await n1.connected(T, "ann") is True
    assert await devices(n2, "ann") == 1
    await devices_become(n2, "ann", 0, within=5)
    # From the live node's point of view, ann's next device brings her online again.
    assert await n2.connected(T, "ann") is True
    assert await devices(n2, "ann") == 1


async def test_a_live_node_keeps_counting_past_the_ttl(redis_service, make_store):
    n1 = await make_store(redis_service.url, "n1", ttl=0.3)
    n2 = await make_store(redis_service.url, "n2", ttl=0.3)
    await n1.connected(T, "ann")
    await asyncio.sleep(1.0)  # more than three TTLs: only the heartbeat keeps n1 alive
    assert await devices(n2, "ann") == 1


async def test_a_node_that_stops_withdraws_its_devices_at_once(redis_service, make_store):
    n1 = await make_store(redis_service.url, "n1")
    n2 = await make_store(redis_service.url, "n2")
    await n1.connected(T, "ann")
    await n2.connected(T, "bo")
    await n1.stop()
    status = await n2.status(T, ["ann", "bo"])
    assert status["ann"]["online"] is False
    assert status["bo"]["online"] is True


async def test_counts_are_restored_after_redis_restarts(own_redis, make_store):
    n1 = await make_store(own_redis.url, "n1", ttl=0.6)
    n2 = await make_store(own_redis.url, "n2", ttl=0.6)
    await n1.connected(T, "ann")
    await n2.connected(T, "ann")
    await n2.connected(T, "bo")
    own_redis.restart()  # an empty Redis: every count is gone
    # Each node notices its heartbeat is gone and writes its devices again.
    await devices_become(n1, "ann", 2)
    assert await devices(n1, "bo") == 1
    assert await n1.disconnected(T, "ann") is False
    assert await n2.disconnected(T, "ann") is True


async def test_with_redis_down_presence_shows_this_nodes_view_and_recovers(
    own_redis, make_store, caplog
):
    n1 = await make_store(own_redis.url, "n1", ttl=0.6)
    own_redis.terminate()
    assert await n1.connected(T, "ann") is True  # first device here, as far as n1 knows
    assert await n1.connected(T, "ann") is False
    assert (await n1.status(T, ["ann"]))["ann"]["devices"] == 2
    assert await n1.disconnected(T, "ann") is False
    assert caplog.text.count("presence cannot reach Redis") == 1  # throttled
    own_redis.restart()
    n2 = await make_store(own_redis.url, "n2", ttl=0.6)
    await devices_become(n2, "ann", 1)
