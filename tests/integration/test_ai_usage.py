"""AI usage: one row per reply with tokens, cost and outcome; admins list and sum it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warbler.ai.providers.base import Usage
from warbler.ai.providers.config import ProviderConfig
from warbler.errors import InvalidRequest
from warbler.store.models_ai import AiUsage

DEEPSEEK = ProviderConfig(kind="openai", name="deepseek", model="deepseek-chat",
                          price_prompt=2.0, price_completion=8.0)  # fmt: skip
MAY = datetime(2025, 5, 1, tzinfo=UTC)


@pytest.fixture
async def acme(make_tenant):
    tenant = await make_tenant("acme")
    tenant.admin = await tenant.user("ada", role="admin")
    return tenant


async def record(services, tenant_id, bot_id="BOT1", **fields):
    values = {"tenant_id": tenant_id, "bot_id": bot_id, "source": "chat", "status": "answered"}
    return await services.ai_usage.record(**{**values, **fields})


async def test_a_reply_is_recorded_with_its_cost_at_the_providers_prices(services, acme):
    row = await record(
        services, acme.id, provider=DEEPSEEK, usage=Usage(1000, 500), latency_ms=840,
        user_id="U1", conversation_id="C1", trigger_message_id="M1", reply_message_id="M2",
    )  # fmt: skip
    assert row["cost"] == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert (row["provider"], row["model"], row["total_tokens"]) == (
        "openai:deepseek",
        "deepseek-chat",
        1500,
    )
    extractive = await record(services, acme.id, provider="extractive", status="curated")
    assert (extractive["cost"], extractive["provider"], extractive["model"]) == (
        0.0,
        "extractive",
        None,
    )
    listed = await services.ai_usage.list(acme.id)
    assert [r["id"] for r in listed] == [extractive["id"], row["id"]]
    assert listed[1]["trigger_message_id"] == "M1" and listed[1]["latency_ms"] == 840


async def test_a_row_recorded_in_the_callers_transaction_commits_with_it(services, acme):
    with pytest.raises(RuntimeError):
        async with services.db.write() as s:
            await services.ai_usage.record(s, tenant_id=acme.id, bot_id="B", source="chat",
                                           status="answered", usage=Usage(5, 5))  # fmt: skip
            raise RuntimeError("the reply failed")
    assert await services.ai_usage.list(acme.id) == []
    async with services.db.write() as s:
        await services.ai_usage.record(s, tenant_id=acme.id, bot_id="B", source="openai_api",
                                       status="answered")  # fmt: skip
    assert [r["source"] for r in await services.ai_usage.list(acme.id)] == ["openai_api"]


async def test_unknown_sources_and_statuses_are_refused(services, acme):
    with pytest.raises(InvalidRequest):
        await record(services, acme.id, status="great")
    with pytest.raises(InvalidRequest):
        await record(services, acme.id, source="email")


async def test_summary_per_bot_user_and_day_with_outcomes_and_totals(services, acme, make_tenant):
    at = [MAY.replace(day=d, hour=h) for d, h in ((1, 9), (1, 23), (2, 0), (3, 12))]
    await record(services, acme.id, "A", user_id="U1", provider=DEEPSEEK, usage=Usage(100, 50),
                 latency_ms=100, created_at=at[0])  # fmt: skip
    await record(services, acme.id, "A", user_id="U2", provider=DEEPSEEK, usage=Usage(200, 100),
                 latency_ms=300, status="fallback", created_at=at[1])  # fmt: skip
    await record(services, acme.id, "B", user_id="U1", status="quota", created_at=at[2])
    await record(services, acme.id, "B", user_id="U1", status="curated", created_at=at[3])
    other = await make_tenant("globex")
    await record(services, other.id, "A", usage=Usage(9999, 9999), created_at=at[0])
    june = MAY.replace(month=6)

    by_bot = await services.ai_usage.summary(acme.id, since=MAY, until=june, group_by="bot")
    a, b = by_bot["groups"]
    assert (a["key"], a["replies"], a["prompt_tokens"], a["completion_tokens"]) == (
        "A",
        2,
        300,
        150,
    )
    assert a["cost"] == pytest.approx((300 * 2.0 + 150 * 8.0) / 1e6)
    assert a["avg_latency_ms"] == 200.0
    assert a["statuses"]["answered"] == 1 and a["statuses"]["fallback"] == 1
    assert (b["key"], b["replies"], b["statuses"]["quota"], b["statuses"]["curated"]) == (
        "B",
        2,
        1,
        1,
    )
    assert by_bot["total"]["replies"] == 4 and by_bot["total"]["total_tokens"] == 450

    by_user = await services.ai_usage.summary(acme.id, since=MAY, until=june, group_by="user")
    assert {g["key"]: g["replies"] for g in by_user["groups"]} == {"U1": 3, "U2": 1}

    by_day = await services.ai_usage.summary(acme.id, since=MAY, until=june, group_by="day")
    assert [(g["key"], g["replies"]) for g in by_day["groups"]] == [
        ("2025-05-01", 2), ("2025-05-02", 1), ("2025-05-03", 1)
    ]  # fmt: skip

    part = await services.ai_usage.summary(acme.id, since=at[1], until=at[3], group_by="bot")
    assert part["total"]["replies"] == 2  # [since, until)


async def test_admins_read_usage_over_the_api_and_members_cannot(client, services, acme):
    rows = [await record(services, acme.id, "A", usage=Usage(10, 10),
                         created_at=MAY.replace(day=d)) for d in (1, 2, 3)]  # fmt: skip
    await record(services, acme.id, "B", created_at=MAY.replace(day=4))
    admin = acme.admin.headers
    r = await client.get("/ai/usage", params={"bot_id": "A", "limit": 2}, headers=admin)
    assert r.status_code == 200 and [u["id"] for u in r.json()] == [rows[2]["id"], rows[1]["id"]]
    r = await client.get(
        "/ai/usage", params={"bot_id": "A", "before": rows[1]["id"]}, headers=admin
    )
    assert [u["id"] for u in r.json()] == [rows[0]["id"]]
    # A time without a zone is UTC.
    r = await client.get("/ai/usage/summary", params={"group_by": "day", "since": "2025-05-02T00:00:00",
                         "until": "2025-05-04T00:00:00"}, headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    assert [g["key"] for g in r.json()["groups"]] == ["2025-05-02", "2025-05-03"]
    assert r.json()["total"]["total_tokens"] == 40
    r = await client.get("/ai/usage/summary", params={"since": "2025-05-04T00:00:00Z",
                         "until": "2025-05-01T00:00:00Z"}, headers=admin)  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "until"
    member = (await acme.user("mo")).headers
    assert (await client.get("/ai/usage", headers=member)).status_code == 403
    assert (await client.get("/ai/usage/summary", headers=member)).status_code == 403


async def test_usage_of_one_tenant_is_invisible_to_another(client, services, acme, make_tenant):
    await record(services, acme.id, "A", usage=Usage(10, 10))
    other = await make_tenant("globex")
    them = (await other.user("gus", role="admin")).headers
    assert (await client.get("/ai/usage", headers=them)).json() == []
    summary = (await client.get("/ai/usage/summary", headers=them)).json()
    assert summary["groups"] == [] and summary["total"]["replies"] == 0
    async with services.db.read() as s:
        assert await services.ai_quotas.tokens_used(s, other.id) == 0
        assert await services.ai_quotas.tokens_used(s, acme.id) == 20


async def test_usage_outlives_the_bot_it_bills(client, services, acme):
    bot = (await client.post("/bots", json={"name": "B"}, headers=acme.admin.headers)).json()
    await record(services, acme.id, bot["id"], usage=Usage(7, 3))
    await client.delete(f"/bots/{bot['id']}", headers=acme.admin.headers)
    async with services.db.read() as s:
        assert (await s.get(AiUsage, (await services.ai_usage.list(acme.id))[0]["id"])) is not None
    r = await client.get("/ai/usage", params={"bot_id": bot["id"]}, headers=acme.admin.headers)
    assert [u["total_tokens"] for u in r.json()] == [10]
