"""``warbler demo``'s customer service: the widget ``demo`` answered by the demo bot, a team
that is always open, two agents who can sign in, three canned replies; set up once."""

from __future__ import annotations

from sqlalchemy import func, select

from warbler.store.models_support import CannedReply, SupportAgent, SupportTeam
from warbler.support.demo import AGENTS, WIDGET_ID, seed_support

PASSWORD = "warbler-demo"


async def test_the_demo_tenant_gets_a_widget_agents_a_team_and_canned_replies(
    client, services, make_tenant
):
    tenant = await make_tenant("demo")
    key = {"Authorization": f"Bearer {await tenant.api_key('admin')}"}
    bot = await client.post("/bots", json={"name": "Assistant", "username": "assistant"},
                            headers=key)  # fmt: skip
    assert bot.status_code == 201, bot.text
    assert await seed_support(services, tenant.id, PASSWORD, bot_username="assistant")
    assert not await seed_support(services, tenant.id, PASSWORD, bot_username="assistant")

    config = await client.get(f"/support/widget/{WIDGET_ID}/config", params={"lang": "zh"})
    assert config.status_code == 200, config.text
    assert config.json()["title"] == "明叶家居客服"
    assert config.json()["office"] == {"open": True, "next_open_at": None,
                                       "timezone": "Asia/Shanghai"}  # fmt: skip
    session = await client.post(f"/support/widget/{WIDGET_ID}/sessions", json={})
    assert session.status_code == 201, session.text
    assert session.json()["bot"]["id"] == bot.json()["user_id"]

    for username, display in AGENTS:
        login = await client.post(
            "/auth/login", json={"tenant": "demo", "username": username, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        me = await client.get(
            "/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
        )
        assert (me.json()["role"], me.json()["display_name"]) == ("agent", display)
    async with services.db.read() as s:
        teams = (
            await s.scalars(select(SupportTeam).where(SupportTeam.tenant_id == tenant.id))
        ).all()
        agents = await s.scalar(
            select(func.count())
            .select_from(SupportAgent)
            .where(SupportAgent.tenant_id == tenant.id)
        )
        canned = await s.scalar(
            select(func.count()).select_from(CannedReply).where(CannedReply.tenant_id == tenant.id)
        )
    assert [(t.name, t.office_hours) for t in teams] == [("Support 客服", {})]
    assert (agents, canned) == (2, 3)


async def test_a_tenant_without_the_bot_gets_no_support_setup(client, services, make_tenant):
    tenant = await make_tenant("demo")
    assert not await seed_support(services, tenant.id, PASSWORD, bot_username="assistant")
    r = await client.get(f"/support/widget/{WIDGET_ID}/config")
    assert r.status_code == 404
