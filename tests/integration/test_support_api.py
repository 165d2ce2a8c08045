"""The customer-service REST API: settings, teams, agents, the agent's reads (audited) and who
may call what."""

from __future__ import annotations

from sqlalchemy import select

from tests.integration.support_world import REFUND_QUESTION, support_world
from warbler.store.models_audit import AuditEntry


async def audited(services, tenant_id: str, action: str) -> list[AuditEntry]:
    async with services.db.read() as s:
        return list(
            (
                await s.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.tenant_id == tenant_id, AuditEntry.action == action)
                    .order_by(AuditEntry.id)
                )
            ).all()
        )


async def test_settings_are_created_with_a_widget_id_and_the_identity_secret_is_write_only(
    client, services, make_tenant
):
    t = await make_tenant("fresh")
    owner = await t.user("olive", role="owner")
    r = await client.get("/support/settings", headers=owner.headers)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["widget_id"] and view["bot_user_id"] is None
    assert view["escalate_on_no_answer"] is True and view["identity_secret_set"] is False
    assert (await services.support.ensure_settings(t.id))["widget_id"] == view["widget_id"]

    secret = "s3cret-s3cret-s3cret"
    r = await client.put(
        "/support/settings",
        json={"identity_secret": secret, "identity_required": True,
              "escalate_keywords": ["refund", "退款"], "widget_title": {"en": "Help", "zh": "帮助"},
              "allowed_origins": ["https://shop.example.com/"]},
        headers=owner.headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert secret not in r.text and r.json()["identity_secret_set"] is True
    assert r.json()["allowed_origins"] == ["https://shop.example.com"]
    assert await services.support.identity_secret(t.id) == secret
    found = await services.support.settings_by_widget(view["widget_id"])
    assert found is not None and found["tenant_id"] == t.id
    [entry] = await audited(services, t.id, "support.settings_changed")
    assert secret not in str(entry.data)

    for bad in ({"bot_user_id": owner.id}, {"identity_secret": "short"},
                {"allowed_origins": ["ftp://x"]}, {"widget_color": "red"},
                {"default_team_id": "01NOPE"}):  # fmt: skip
        r = await client.put("/support/settings", json=bad, headers=owner.headers)
        assert r.status_code in (400, 404, 422), (bad, r.text)


async def test_teams_and_agents_are_managed_by_admins(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    agent = await w.agent("amy", status="offline")
    member = await w.tenant.user("mo")
    body = {"name": "Sales 销售", "timezone": "Europe/Berlin",
            "office_hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["2026-12-25"],
            "sla_first_response_seconds": 600, "member_ids": [agent.id]}  # fmt: skip
    r = await client.post("/support/teams", json=body, headers=agent.headers)
    assert r.status_code == 403, "agents do not run teams"
    r = await client.post("/support/teams", json=body, headers=w.owner.headers)
    assert r.status_code == 201, r.text
    team = r.json()
    assert team["member_ids"] == [agent.id] and team["timezone"] == "Europe/Berlin"
    r = await client.post("/support/teams", json=body, headers=w.owner.headers)
    assert r.status_code == 409
    r = await client.patch(f"/support/teams/{team['id']}", json={"member_ids": [member.id]},
                           headers=w.owner.headers)  # fmt: skip
    assert r.status_code == 404, "team members are agents"
    r = await client.get("/support/teams", headers=agent.headers)
    assert [x["name"] for x in r.json()] == ["Sales 销售"]

    r = await client.get("/support/agents/me", headers=agent.headers)
    assert r.json()["status"] == "offline" and r.json()["team_ids"] == [team["id"]]
    r = await client.put("/support/agents/me", json={"status": "online"}, headers=agent.headers)
    assert r.json()["status"] == "online"
    r = await client.put("/support/agents/me", json={"status": "busy"}, headers=agent.headers)
    assert r.status_code == 422
    r = await client.get("/support/agents/me", headers=member.headers)
    assert r.status_code == 403, "a member is not an agent"
    r = await client.put(f"/support/agents/{agent.id}", json={"capacity": 4, "team_ids": []},
                         headers=w.owner.headers)  # fmt: skip
    assert r.status_code == 200 and (r.json()["capacity"], r.json()["team_ids"]) == (4, [])
    r = await client.put(f"/support/agents/{member.id}", json={"capacity": 4},
                         headers=w.owner.headers)  # fmt: skip
    assert r.status_code == 400
    r = await client.delete(f"/support/teams/{team['id']}", headers=w.owner.headers)
    assert r.status_code == 204
    assert (await client.get("/support/teams", headers=w.owner.headers)).json() == []


async def test_agents_read_the_full_history_with_sources_and_each_read_is_audited(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    answer = await w.ask_bot(client, v, conv, REFUND_QUESTION)
    await w.say(client, v, conv, "talk to a human")
    agent = await w.agent("amy", status="away")  # not assigned, not a member
    r = await client.get(f"/conversations/{conv}/messages", headers=agent.headers)
    assert r.status_code == 404, "the ordinary history is for members"
    r = await client.get(f"/support/conversations/{conv}/messages", headers=agent.headers)
    assert r.status_code == 200, r.text
    page = r.json()["messages"]
    bot_turn = next(m for m in page if m["id"] == answer["id"])
    assert bot_turn["data"]["ai"]["sources"][0]["title"]
    assert [m["kind"] for m in page][-1] == "system"  # the queue notice
    r = await client.get(f"/support/conversations/{conv}/messages",
                         params={"before_seq": page[-1]["seq"], "limit": 1},
                         headers=agent.headers)  # fmt: skip
    assert [m["seq"] for m in r.json()["messages"]] == [page[-2]["seq"]]
    assert r.json()["has_more"] is True

    r = await client.get("/support/queue", headers=agent.headers)
    [entry] = r.json()
    assert entry["preview"] == "talk to a human" and entry["visitor"]["id"] == v.id
    r = await client.get(f"/support/tickets/{entry['ticket_id']}", headers=agent.headers)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["conversation"]["state"] == "waiting" and detail["position"] == 1
    assert [t["to_state"] for t in detail["transitions"]] == ["waiting"]
    r = await client.get("/support/tickets", params={"state": "waiting"}, headers=agent.headers)
    assert [t["id"] for t in r.json()] == [entry["ticket_id"]]
    r = await client.get("/support/tickets", params={"assignee_id": "me"}, headers=agent.headers)
    assert r.json() == []
    r = await client.get("/support/conversations", params={"state": "waiting"},
                         headers=agent.headers)  # fmt: skip
    assert [c["conversation_id"] for c in r.json()] == [conv]

    reads = await audited(services, w.tenant_id, "support.read")
    # Two history reads (the console polls) are one entry; the ticket read is another.
    assert [(e.actor_id, e.target_type) for e in reads] == [
        (agent.id, "conversation"), (agent.id, "support_ticket"),
    ]  # fmt: skip
    assert reads[0].target_id == conv


async def test_visitors_and_members_cannot_work_the_queue(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    await w.say(client, v, conv, "转人工")
    member = await w.tenant.user("mo")
    for who in (v, member):
        for path in ("/support/queue", "/support/tickets", "/support/conversations",
                     f"/support/conversations/{conv}/messages",
                     f"/support/conversations/{conv}/transitions"):  # fmt: skip
            r = await client.get(path, headers=who.headers)
            assert r.status_code == 403, (path, r.text)
    me = await client.get("/support/me", headers=v.headers)
    assert me.status_code == 200 and me.json()["ticket"]["reason"] == "user_requested"
    assert (await client.get("/support/me", headers=member.headers)).status_code == 403
    r = await client.get("/support/tickets", params={"state": "open"}, headers=w.owner.headers)
    assert r.status_code == 422
