"""The queue and assignment: round-robin among online agents with free capacity, a FIFO
waiting queue with positions and expected waits, assignment the moment capacity frees,
manual pick, transfer to an agent or a team, and no double assignment under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from tests.integration.support_world import messages_of, notices, support_world
from warbler.store.models import Event, Member
from warbler.store.models_support import SupportTicket
from warbler.support.queue import DEFAULT_HANDLE_SECONDS


async def test_two_agents_at_capacity_one_and_three_visitors_the_third_waits_then_is_assigned(
    client, services, make_tenant
):
    """THE acceptance scenario: the third visitor is queued (and told their place) and is
    assigned as soon as an agent frees up."""
    w = await support_world(services, make_tenant)
    a1 = await w.agent("agent1", capacity=1)
    a2 = await w.agent("agent2", capacity=1)
    visitors = [await w.visitor(f"v{i}", locale=loc) for i, loc in enumerate(("en", "zh", "en"))]
    for (v, conv), text in zip(visitors, ("talk to a human", "转人工", "real person please"),
                               strict=True):  # fmt: skip
        await w.say(client, v, conv, text)

    first, second, third = [await w.ticket(conv) for _, conv in visitors]
    assert {first.assignee_id, second.assignee_id} == {a1.id, a2.id}
    assert (first.state, second.state) == ("assigned", "assigned")
    assert third.state == "waiting" and third.assignee_id is None
    v3, conv3 = visitors[2]
    told = notices(await messages_of(client, v3, conv3))[-1]
    assert told["data"]["support"]["event"] == "queued"
    assert told["data"]["support"]["position"] == 1
    assert told["data"]["support"]["expected_wait_seconds"] == DEFAULT_HANDLE_SECONDS
    assert "number 1 in the queue" in told["text"] and "5 minutes" in told["text"]
    me = (await client.get("/support/me", headers=v3.headers)).json()
    assert me["state"] == "waiting" and me["ticket"]["position"] == 1
    r = await client.get("/support/queue", headers=a1.headers)
    assert [q["ticket_id"] for q in r.json()] == [third.id]

    # Whoever has the first ticket resolves it: the third visitor is theirs at once.
    freed = a1 if first.assignee_id == a1.id else a2
    r = await client.post(f"/support/tickets/{first.id}/resolve", headers=freed.headers)
    assert r.status_code == 200, r.text
    third = await w.ticket(conv3)
    assert (third.state, third.assignee_id) == ("assigned", freed.id)
    assert await w.transitions(conv3) == [
        ("bot", "waiting", "user_requested"),
        ("waiting", "assigned", "round_robin"),
    ]
    joined = notices(await messages_of(client, v3, conv3))[-1]
    assert joined["data"]["support"]["assignee"]["id"] == freed.id
    async with services.db.read() as s:
        assert await s.get(Member, (conv3, freed.id)) is not None
    assert (await client.get("/support/queue", headers=a1.headers)).json() == []


async def test_round_robin_gives_the_next_ticket_to_the_longest_idle_agent(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    a1 = await w.agent("agent1", capacity=5)
    a2 = await w.agent("agent2", capacity=5)
    order = []
    for i in range(4):
        v, conv = await w.visitor(f"v{i}")
        await w.say(client, v, conv, "I need a human")
        order.append((await w.ticket(conv)).assignee_id)
    assert order[0] != order[1] and order[:2] == order[2:]
    assert set(order) == {a1.id, a2.id}
    r = await client.get("/support/agents", headers=a1.headers)
    assert {a["username"]: a["open_count"] for a in r.json()} == {"agent1": 2, "agent2": 2}


async def test_the_queue_is_first_in_first_out_and_moves_when_an_agent_comes_online(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    convs = []
    for i in range(3):
        v, conv = await w.visitor(f"v{i}")
        await w.say(client, v, conv, "talk to a person")
        convs.append((v, conv))
        told = notices(await messages_of(client, v, conv))[-1]["data"]["support"]
        assert told["position"] == i + 1
    agent = await w.agent("late", capacity=2, status="away")
    assert [(await w.ticket(c)).state for _, c in convs] == ["waiting"] * 3
    r = await client.put("/support/agents/me", json={"status": "online"}, headers=agent.headers)
    assert r.status_code == 200 and r.json()["open_count"] == 2
    states = [(await w.ticket(c)).state for _, c in convs]
    assert states == ["assigned", "assigned", "waiting"], "oldest first"
    async with services.db.read() as s:
        moved = (
            await s.scalars(
                select(Event.payload).where(
                    Event.conversation_id == convs[2][1], Event.type == "support.position_changed"
                )
            )
        ).all()
    assert moved and moved[-1]["position"] == 1
    # Raising the capacity takes the last one.
    await services.support.agents.update(w.admin, agent.id, capacity=3)
    assert (await w.ticket(convs[2][1])).assignee_id == agent.id


async def test_the_expected_wait_is_the_median_handle_time_of_recent_tickets(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    agent = await w.agent("solo", capacity=1)
    v, conv = await w.visitor("first")
    await w.say(client, v, conv, "human please")
    ticket = await w.ticket(conv)
    await client.post(f"/support/tickets/{ticket.id}/resolve", headers=agent.headers)
    async with services.db.write() as s:  # it took 10 minutes to handle
        row = await s.get(SupportTicket, ticket.id)
        assert row is not None and row.assigned_at is not None
        row.resolved_at = row.assigned_at + timedelta(minutes=10)
    await w.agent("busy", capacity=0)
    # The solo agent takes the next one; the one after waits 10 minutes (1 seat).
    v2, conv2 = await w.visitor("second")
    await w.say(client, v2, conv2, "human please")
    v3, conv3 = await w.visitor("third")
    await w.say(client, v3, conv3, "human please")
    told = notices(await messages_of(client, v3, conv3))[-1]["data"]["support"]
    assert (told["position"], told["expected_wait_seconds"]) == (1, 600)


async def test_an_agent_picks_a_waiting_ticket_by_hand(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    await w.say(client, v, conv, "转人工")
    picker = await w.agent("picky", capacity=0, status="away")  # no automatic assignment
    ticket = await w.ticket(conv)
    assert ticket.state == "waiting"
    r = await client.post(f"/support/tickets/{ticket.id}/pick", headers=picker.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["assignee_id"]) == ("assigned", picker.id)
    other = await w.agent("other")
    r = await client.post(f"/support/tickets/{ticket.id}/pick", headers=other.headers)
    assert r.status_code == 409
    assert await w.transitions(conv) == [
        ("bot", "waiting", "user_requested"),
        ("waiting", "assigned", "pick"),
    ]


async def test_transfer_to_another_agent_and_to_a_team(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    a1 = await w.agent("agent1", capacity=2)
    a2 = await w.agent("agent2", capacity=2, status="away")
    specialist = await w.agent("spec", capacity=2, status="away")
    r = await client.post(
        "/support/teams", json={"name": "Billing 账务", "member_ids": [specialist.id]},
        headers=w.owner.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    team = r.json()["id"]
    v, conv = await w.visitor("vera", locale="zh")
    await w.say(client, v, conv, "人工客服")
    ticket = await w.ticket(conv)
    assert ticket.assignee_id == a1.id

    r = await client.post(f"/support/tickets/{ticket.id}/transfer",
                          json={"agent_id": a2.id, "note": "VIP customer"},
                          headers=a1.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["assignee_id"] == a2.id
    async with services.db.read() as s:
        assert await s.get(Member, (conv, a1.id)) is None, "the old agent left"
        assert await s.get(Member, (conv, a2.id)) is not None
    told = notices(await messages_of(client, v, conv))[-1]
    assert "agent2" in told["text"] and "转接" in told["text"]

    r = await client.post(f"/support/tickets/{ticket.id}/transfer", json={"team_id": team},
                          headers=a2.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["team_id"]) == ("waiting", team)
    # a1 is online with room, but only the team's members serve it.
    r = await client.put("/support/agents/me", json={"status": "online"},
                         headers=specialist.headers)  # fmt: skip
    assert r.status_code == 200
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.assignee_id) == ("assigned", specialist.id)
    assert await w.transitions(conv) == [
        ("bot", "waiting", "user_requested"),
        ("waiting", "assigned", "round_robin"),
        ("assigned", "assigned", "transfer"),
        ("assigned", "waiting", "transfer"),
        ("waiting", "assigned", "round_robin"),
    ]
    r = await client.post(f"/support/tickets/{ticket.id}/transfer", json={}, headers=a1.headers)
    assert r.status_code in (400, 422)


async def test_concurrent_escalations_never_assign_beyond_capacity(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    await w.agent("agent1", capacity=1)
    await w.agent("agent2", capacity=1)
    visitors = [await w.visitor(f"v{i}") for i in range(6)]
    await asyncio.gather(*(w.say(client, v, conv, "talk to a human") for v, conv in visitors))
    tickets = [await w.ticket(conv) for _, conv in visitors]
    assigned = [t for t in tickets if t.state == "assigned"]
    assert len(assigned) == 2 and len({t.assignee_id for t in assigned}) == 2
    waiting = sorted(
        (t for t in tickets if t.state == "waiting"), key=lambda t: (t.queued_at, t.id)
    )
    places = []
    for t in waiting:
        v = next(v for v, c in visitors if c == t.conversation_id)
        me = (await client.get("/support/me", headers=v.headers)).json()
        places.append(me["ticket"]["position"])
    assert places == [1, 2, 3, 4]
    # Resolving both at once hands out exactly the two oldest waiting tickets.
    agents = {a.id: a for a in w.agents.values()}
    await asyncio.gather(*(
        client.post(f"/support/tickets/{t.id}/resolve", headers=agents[str(t.assignee_id)].headers)
        for t in assigned
    ))  # fmt: skip
    now = [await w.ticket(t.conversation_id) for t in waiting]
    assert [t.state for t in now] == ["assigned", "assigned", "waiting", "waiting"]


async def test_api_keys_with_support_write_resolve_and_support_read_only_read(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    await w.agent("agent1")
    v, conv = await w.visitor("vera")
    await w.say(client, v, conv, "转人工")
    ticket = await w.ticket(conv)
    reader = {"Authorization": f"Bearer {await w.tenant.api_key('support:read')}"}
    writer = {"Authorization": f"Bearer {await w.tenant.api_key('support:write')}"}
    assert (await client.get("/support/tickets", headers=reader)).status_code == 200
    r = await client.post(f"/support/tickets/{ticket.id}/resolve", headers=reader)
    assert r.status_code == 403
    r = await client.post(f"/support/tickets/{ticket.id}/resolve", headers=writer)
    assert r.status_code == 200 and r.json()["resolved_by"] is None
    # A service key is nobody: it cannot pick for itself.
    v2, conv2 = await w.visitor("second")
    await w.say(client, v2, conv2, "转人工")
    r = await client.post(f"/support/conversations/{conv2}/takeover", headers=writer)
    assert r.status_code == 403
