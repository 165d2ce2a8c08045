"""AI quotas: answers per minute per user, bot and tenant; tokens per calendar month; the
message a person sees when a limit is hit; the 429 an API client gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from warbler.ai.providers.base import Usage
from warbler.ai.quotas import user_message
from warbler.api import errors as api_errors
from warbler.errors import QuotaExceeded
from warbler.im.ratelimit import MemoryRateLimiter


@pytest.fixture
async def acme(make_tenant):
    tenant = await make_tenant("acme")
    tenant.admin = await tenant.user("ada", role="admin")
    return tenant


async def make_bot(client, services, tenant, name: str = "B", **quotas):
    r = await client.post("/bots", json={"name": name, "quotas": quotas},
                          headers=tenant.admin.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return await services.bots.load(tenant.id, r.json()["id"])


async def refused(services, bot, asker) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as err:
        await services.ai_quotas.check(bot, asker)
    return err.value


async def spend(services, bot, tokens: int, at: datetime | None = None) -> None:
    await services.ai_usage.record(
        tenant_id=bot.tenant_id, bot_id=bot.id, source="chat", status="answered",
        usage=Usage(prompt_tokens=tokens // 2, completion_tokens=tokens - tokens // 2),
        created_at=at,
    )  # fmt: skip


async def test_one_user_asking_too_fast_is_stopped_and_others_still_get_answers(
    client, services, acme
):
    bot = await make_bot(client, services, acme, user_messages_per_minute=2)
    await services.ai_quotas.check(bot, "u1")
    await services.ai_quotas.check(bot, "u1")
    exc = await refused(services, bot, "u1")
    assert exc.details["scope"] == "user" and exc.details["limit_name"] == "messages_per_minute"
    assert exc.details["limit"] == 2 and 0 < exc.details["retry_after_seconds"] <= 30
    await services.ai_quotas.check(bot, "u2")  # another user has a bucket of their own
    await services.ai_quotas.check(bot, None)  # API-key calls have no user bucket


async def test_a_bot_answers_at_most_its_messages_per_minute(client, services, acme):
    bot = await make_bot(client, services, acme, messages_per_minute=3)
    other = await make_bot(client, services, acme, name="Other", messages_per_minute=3)
    for user in ("u1", "u2", "u3"):
        await services.ai_quotas.check(bot, user)
    exc = await refused(services, bot, "u4")
    assert (exc.details["scope"], exc.details["limit"]) == ("bot", 3)
    await services.ai_quotas.check(other, "u4")


async def test_a_tenants_limit_spans_all_its_bots_and_is_set_by_its_admin(
    client, services, acme, make_tenant
):
    r = await client.put("/ai/quotas", json={"messages_per_minute": 2}, headers=acme.admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["overrides"] == {"messages_per_minute": 2, "tokens_per_month": None}
    assert r.json()["effective"]["messages_per_minute"] == 2
    one, two = await make_bot(client, services, acme), await make_bot(client, services, acme, "Two")
    await services.ai_quotas.check(one, "u1")
    await services.ai_quotas.check(two, "u2")
    exc = await refused(services, two, "u3")
    assert (exc.details["scope"], exc.details["limit"]) == ("tenant", 2)
    # Another tenant keeps the default (600 a minute).
    globex = await make_tenant("globex")
    globex.admin = await globex.user("gus", role="admin")
    theirs = await make_bot(client, services, globex)
    for _ in range(3):
        await services.ai_quotas.check(theirs, "u1")


async def test_zero_means_unlimited(client, services, acme):
    bot = await make_bot(client, services, acme, messages_per_minute=0, user_messages_per_minute=0)
    for _ in range(70):  # past the defaults of 60 per bot and 20 per user
        await services.ai_quotas.check(bot, "u1")


async def test_tokens_per_month_count_this_months_usage_of_the_tenant(client, services, acme):
    await client.put("/ai/quotas", json={"tokens_per_month": 1000}, headers=acme.admin.headers)
    bot = await make_bot(client, services, acme)
    await spend(services, bot, 600)
    await services.ai_quotas.check(bot, "u1")
    await spend(services, bot, 400)
    exc = await refused(services, bot, "u1")
    assert exc.details["scope"] == "tenant" and exc.details["limit_name"] == "tokens_per_month"
    assert exc.details["used"] == 1000
    now = datetime.now(UTC)
    next_month = (now.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    assert abs(exc.details["retry_after_seconds"] - (next_month - now).total_seconds()) < 60
    r = await client.get("/ai/quotas", headers=acme.admin.headers)
    assert r.json()["tokens_used_this_month"] == 1000
    # Raising the limit lets it answer again.
    await client.put("/ai/quotas", json={"tokens_per_month": 0}, headers=acme.admin.headers)
    await services.ai_quotas.check(bot, "u1")


async def test_a_bots_monthly_tokens_stop_that_bot_only(client, services, acme):
    bot = await make_bot(client, services, acme, tokens_per_month=500)
    other = await make_bot(client, services, acme, name="Other", tokens_per_month=500)
    await spend(services, bot, 500)
    exc = await refused(services, bot, "u1")
    assert (exc.details["scope"], exc.details["limit"]) == ("bot", 500)
    await services.ai_quotas.check(other, "u1")


async def test_the_monthly_budget_starts_afresh_on_the_first_of_the_month_utc(
    client, services, acme, monkeypatch
):
    await client.put("/ai/quotas", json={"tokens_per_month": 1000}, headers=acme.admin.headers)
    bot = await make_bot(client, services, acme)
    await spend(services, bot, 2000, at=datetime(2025, 3, 31, 23, 59, 0, tzinfo=UTC))
    monkeypatch.setattr(
        services.ai_quotas, "now", lambda: datetime(2025, 3, 31, 23, 59, 30, tzinfo=UTC)
    )
    exc = await refused(services, bot, "u1")
    assert exc.details["retry_after_seconds"] == 30
    monkeypatch.setattr(
        services.ai_quotas, "now", lambda: datetime(2025, 4, 1, 0, 0, 5, tzinfo=UTC)
    )
    await services.ai_quotas.check(bot, "u1")
    # December rolls over into January.
    await spend(services, bot, 2000, at=datetime(2025, 12, 20, tzinfo=UTC))
    monkeypatch.setattr(
        services.ai_quotas, "now", lambda: datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    )
    assert (await refused(services, bot, "u1")).details["retry_after_seconds"] == 3600


async def test_a_monthly_refusal_takes_nothing_from_the_per_minute_budget(client, services, acme):
    bot = await make_bot(client, services, acme, tokens_per_month=10, user_messages_per_minute=1)
    await spend(services, bot, 10)
    for _ in range(3):
        assert (await refused(services, bot, "u1")).details["limit_name"] == "tokens_per_month"
    await client.patch(f"/bots/{bot.id}", json={"quotas": {"user_messages_per_minute": 1}},
                       headers=acme.admin.headers)  # fmt: skip
    bot = await services.bots.load(acme.id, bot.id)
    await services.ai_quotas.check(bot, "u1")  # the user's one answer a minute is still there


@pytest.mark.parametrize(
    ("details", "en", "zh"),
    [
        ({"scope": "tenant", "limit_name": "tokens_per_month", "retry_after_seconds": 86400.0},
         "usage limit for this month", "本月的使用额度已用完"),
        ({"scope": "bot", "limit_name": "tokens_per_month", "retry_after_seconds": 9.0},
         "usage limit for this month", "本月的使用额度已用完"),
        ({"scope": "user", "limit_name": "messages_per_minute", "retry_after_seconds": 2.2},
         "wait 3 seconds", "请等待 3 秒"),
        ({"scope": "bot", "limit_name": "messages_per_minute", "retry_after_seconds": 0.4},
         "busy right now. Please try again in 1 seconds", "当前繁忙，请 1 秒后再试"),
    ],
)  # fmt: skip
def test_the_person_who_asked_is_told_clearly_in_their_language(details, en, zh):
    exc = QuotaExceeded("limit", details={"limit": 5, **details})
    assert en in user_message(exc, "en")
    assert zh in user_message(exc, "zh-CN")
    assert user_message(exc, None) == user_message(exc, "en")


async def test_quota_exceeded_reaches_an_api_client_as_a_typed_429():
    app = FastAPI()
    api_errors.install(app)

    @app.get("/ask")
    async def ask() -> None:
        raise QuotaExceeded(
            "the bot's limit of 3 answers per minute is reached",
            details={"scope": "bot", "limit_name": "messages_per_minute", "limit": 3,
                     "retry_after_seconds": 12.3},
        )  # fmt: skip

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/ask")
    assert r.status_code == 429 and r.headers["retry-after"] == "12"
    assert r.json()["error"] == {
        "code": "quota_exceeded",
        "message": "the bot's limit of 3 answers per minute is reached",
        "details": {"scope": "bot", "limit_name": "messages_per_minute", "limit": 3,
                    "retry_after_seconds": 12.3},
    }  # fmt: skip


async def test_tenant_quotas_are_for_admins_and_checked(client, acme):
    member = (await acme.user("mo")).headers
    assert (await client.get("/ai/quotas", headers=member)).status_code == 403
    assert (await client.put("/ai/quotas", json={}, headers=member)).status_code == 403
    r = await client.put("/ai/quotas", json={"tokens_per_month": -1}, headers=acme.admin.headers)
    assert r.status_code == 422
    r = await client.get("/ai/quotas", headers=acme.admin.headers)
    assert r.json()["defaults"] == {"messages_per_minute": 600, "tokens_per_month": 0}


async def test_the_memory_limiter_takes_a_rate_per_call():
    limiter = MemoryRateLimiter(rate_per_second=1000, burst=1000)
    assert await limiter.hit("k", rate_per_second=1 / 60, burst=2) == 0
    assert await limiter.hit("k", rate_per_second=1 / 60, burst=2) == 0
    assert 59 < await limiter.hit("k", rate_per_second=1 / 60, burst=2) <= 60
    assert await limiter.hit("other") == 0  # the default rate still applies elsewhere


async def test_per_minute_quotas_are_shared_by_every_node_through_redis(redis_service, prefix):
    from warbler.bus.redis import redis_client
    from warbler.im.ratelimit_redis import RedisRateLimiter

    clients = [redis_client(redis_service.url) for _ in range(2)]
    try:
        n1, n2 = (RedisRateLimiter(c, 1, 1, prefix=prefix, name="ai") for c in clients)
        per_minute = {"rate_per_second": 2 / 60, "burst": 2}
        assert await n1.hit("t:b:bot", **per_minute) == 0
        assert await n2.hit("t:b:bot", **per_minute) == 0
        assert 29 < await n1.hit("t:b:bot", **per_minute) <= 30
        # The bucket lives until it would be full again (2 tokens at 2 a minute: 60 s).
        ttl = await clients[0].pttl(f"{prefix}rate:ai:t:b:bot")
        assert 30_000 < ttl <= 60_000
    finally:
        for c in clients:
            await c.aclose()
