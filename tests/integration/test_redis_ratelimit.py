"""The Redis rate limiter against a real Redis: one bucket per key for every node, refilled over
time, and open (allowing) while Redis is unreachable."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import group_of, make_settings
from warbler.bus.redis import RedisBus, redis_client
from warbler.im.presence_redis import RedisPresenceStore
from warbler.im.ratelimit_redis import RedisRateLimiter


@pytest.fixture
async def make_limiter(prefix: str) -> AsyncIterator[Callable[..., RedisRateLimiter]]:
    """A limiter as one node builds it, on its own client (closed at teardown)."""
    clients: list[Any] = []

    def make(url: str, rate: float, burst: int) -> RedisRateLimiter:
        client = redis_client(url)
        clients.append(client)
        return RedisRateLimiter(client, rate, burst, prefix=prefix)

    yield make
    for client in clients:
        await client.aclose()


async def test_two_nodes_share_one_bucket(redis_service, make_limiter):
    n1 = make_limiter(redis_service.url, rate=0.5, burst=3)
    n2 = make_limiter(redis_service.url, rate=0.5, burst=3)
    assert [await n1.hit("ann"), await n2.hit("ann"), await n1.hit("ann")] == [0, 0, 0]
    wait = await n2.hit("ann")  # the fourth send, whichever node takes it
    assert 1.5 < wait <= 2.0
    assert await n1.hit("ann") > 0
    assert await n2.hit("bo") == 0  # another key, another bucket


async def test_the_bucket_refills_over_time(redis_service, make_limiter):
    limiter = make_limiter(redis_service.url, rate=20, burst=2)
    assert await limiter.hit("k") == 0 and await limiter.hit("k") == 0
    wait = await limiter.hit("k")
    assert 0 < wait <= 0.05
    await asyncio.sleep(wait + 0.02)
    assert await limiter.hit("k") == 0
    assert await limiter.hit("k") > 0


async def test_a_bucket_expires_once_it_would_be_full(redis_service, make_limiter, prefix):
    limiter = make_limiter(redis_service.url, rate=2, burst=4)  # full again after 2 s
    await limiter.hit("ann")
    ttl_ms = await pttl(redis_service.url, f"{prefix}rate:send:ann")
    assert 0 < ttl_ms <= 2000


async def test_the_script_is_loaded_again_after_redis_forgets_it(redis_service, make_limiter):
    limiter = make_limiter(redis_service.url, rate=1, burst=1)
    assert await limiter.hit("ann") == 0
    client = redis_client(redis_service.url)
    try:
        await client.script_flush()
    finally:
        await client.aclose()
    assert await limiter.hit("ann") > 0  # EVALSHA failed with NOSCRIPT; it loaded and ran


async def test_fails_open_while_redis_is_down_and_limits_again_after(
    own_redis, make_limiter, caplog
):
    limiter = make_limiter(own_redis.url, rate=0.1, burst=1)
    assert await limiter.hit("ann") == 0
    own_redis.terminate()
    started = time.perf_counter()
    assert [await limiter.hit("ann") for _ in range(5)] == [0.0] * 5
    assert time.perf_counter() - started < 5 * limiter.timeout + 1
    assert caplog.text.count("rate limiter cannot reach Redis") == 1  # once a minute at most
    own_redis.restart()  # an empty Redis: the bucket starts full
    assert await limiter.hit("ann") == 0
    assert await limiter.hit("ann") > 0


async def pttl(url: str, key: str) -> int:
    client = redis_client(url)
    try:
        return int(await client.pttl(key))
    finally:
        await client.aclose()


# -- the app with WARBLER_REDIS_URL set -----------------------------------------------------


@pytest.fixture
def settings(tmp_path, redis_service, prefix):
    """The conftest app, client and services fixtures, with Redis configured."""
    return make_settings(
        tmp_path / "data",
        redis_url=redis_service.url,
        redis_prefix=prefix,
        send_rate_per_second=0.5,
        send_burst=3,
    )


async def test_the_app_uses_redis_for_the_bus_presence_and_send_limits(
    services, client, make_tenant, prefix
):
    assert isinstance(services.bus, RedisBus) and services.bus.subscribed
    assert isinstance(services.presence.store, RedisPresenceStore)
    assert isinstance(services.messages.rate, RedisRateLimiter)
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    url = f"/conversations/{conv}/messages"
    codes = [
        (await client.post(url, json={"text": f"{i}"}, headers=ann.headers)).status_code
        for i in range(4)
    ]
    assert codes == [201, 201, 201, 429]
    assert await services.redis.exists(f"{prefix}rate:send:{ann.id}")


async def test_a_hung_redis_costs_a_send_at_most_the_timeout(own_redis, make_limiter):
    limiter = make_limiter(own_redis.url, rate=0.1, burst=1)
    assert await limiter.hit("ann") == 0
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)  # connections open, nobody answers
    try:
        started = time.perf_counter()
        assert await limiter.hit("ann") == 0.0  # would be limited; allowed, as Redis is away
        assert time.perf_counter() - started < limiter.timeout + 0.5
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    assert await limiter.hit("ann") > 0  # the bucket is still there once Redis answers
