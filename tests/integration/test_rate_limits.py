"""A user's sends are rate-limited (429 with Retry-After, nothing stored); API keys are not."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from tests.conftest import backend_settings, group_of
from warbler.im.ratelimit import MemoryRateLimiter


@pytest.fixture
def settings(tmp_path, backend, request):
    return backend_settings(
        backend, request, tmp_path / "data", send_rate_per_second=0.5, send_burst=3
    )


async def test_sending_faster_than_the_limit_answers_429_and_stores_nothing(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    url = f"/conversations/{conv}/messages"
    for i in range(3):
        assert (
            await client.post(url, json={"text": f"ok {i}"}, headers=ann.headers)
        ).status_code == 201
    r = await client.post(url, json={"text": "one too many"}, headers=ann.headers)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    texts = [m["text"] for m in (await client.get(url, headers=bo.headers)).json()["messages"]]
    assert "one too many" not in texts
    # Another user has their own bucket.
    assert (
        await client.post(url, json={"text": "bo's turn"}, headers=bo.headers)
    ).status_code == 201


async def test_api_keys_acting_as_a_user_are_not_rate_limited(client, make_tenant, app: FastAPI):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    key = await t.api_key("impersonate")
    headers = {"Authorization": f"Bearer {key}", "X-Warbler-User": ann.id}
    for i in range(6):
        r = await client.post(
            f"/conversations/{conv}/messages", json={"text": f"{i}"}, headers=headers
        )
        assert r.status_code == 201, r.text


async def test_token_bucket_refills_over_time():
    limiter = MemoryRateLimiter(rate_per_second=50, burst=2)
    assert await limiter.hit("k") == 0 and await limiter.hit("k") == 0
    wait = await limiter.hit("k")
    assert 0 < wait <= 0.02
    await asyncio.sleep(wait + 0.01)
    assert await limiter.hit("k") == 0
    assert await limiter.hit("other") == 0
