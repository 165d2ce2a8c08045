"""The support conversation's state machine and its audited history: bot → waiting → assigned
→ resolved → bot, agent takeover, and the bot's silence while a person owns it (including a
reply job enqueued before the takeover)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.integration.support_world import (
    REFUND_QUESTION,
    bot_messages,
    messages_of,
    notices,
    support_world,
)
from warbler.errors import Forbidden, InvalidRequest
from warbler.im.principal import Principal
from warbler.store.models import Event, Member
from warbler.store.models_support import SupportTicket


async def test_a_visitor_has_one_support_conversation_found_again_on_later_sessions(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera", locale="zh")
    again = await services.support.open_for_visitor(w.tenant_id, v.id, locale="en")
    assert again["conversation_id"] == conv and again["created"] is False
    assert again["state"] == "bot" and again["locale"] == "en"
    r = await client.get(f"/conversations/{conv}", headers=v.headers)
    assert r.status_code == 200 and r.json()["kind"] == "support"
    r = await client.get(f"/conversations/{conv}/members", headers=v.headers)
    assert {m["user_id"] for m in r.json()} == {v.id, w.bot["user_id"]}
    # Not a visitor, or no support bot: refused.
    staff = await w.tenant.user("stan")
    with pytest.raises(Forbidden):
        await services.support.open_for_visitor(w.tenant_id, staff.id)
    other = await make_tenant("nobot")
    lone = await other.user("lone", kind="visitor")
    with pytest.raises(InvalidRequest):
        await services.support.open_for_visitor(other.id, lone.id)


async def test_group_admin_actions_refuse_a_support_conversation(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    r = await client.patch(f"/conversations/{conv}", json={"title": "x"}, headers=v.headers)
    assert r.status_code == 403
    r = await client.delete(f"/conversations/{conv}/members/{w.bot['user_id']}", headers=v.headers)
    assert r.status_code == 403


async def test_the_full_cycle_is_recorded_with_reasons_actors_events_and_notices(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera", locale="zh")
    answer = await w.ask_bot(client, v, conv, REFUND_QUESTION)
    assert answer["data"]["ai"]["sources"], "the bot answers from the knowledge base"

    asked = await w.say(client, v, conv, "转人工")
    state = await w.state(conv)
    assert state.state == "waiting"
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.reason) == ("waiting", "user_requested")
    assert ticket.reason_detail["matched"] == "转人工"
    assert ticket.reason_detail["message_id"] == asked["id"]
    queued = notices(await messages_of(client, v, conv))[-1]
    assert queued["data"]["support"]["event"] == "queued"
    assert queued["data"]["support"]["reason"] == "user_requested"
    assert queued["data"]["support"]["position"] == 1
    assert "排在第 1 位" in queued["text"]

    agent = await w.agent("amy")  # going online takes the waiting ticket at once
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.assignee_id) == ("assigned", agent.id)
    joined = notices(await messages_of(client, v, conv))[-1]
    assert joined["data"]["support"]["assignee"]["id"] == agent.id
    assert "已接入" in joined["text"]
    reply = await w.say(client, agent, conv, "您好，我来帮您处理。")
    ticket = await w.ticket(conv)
    assert ticket.first_response_at is not None
    assert ticket.first_response_at >= ticket.queued_at
    assert reply["sender_id"] == agent.id

    r = await client.post(f"/support/tickets/{ticket.id}/resolve", headers=agent.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved" and r.json()["resolved_by"] == agent.id
    resolved = notices(await messages_of(client, v, conv))[-1]
    assert resolved["data"]["support"]["csat_request"] == ticket.id
    me = (await client.get("/support/me", headers=v.headers)).json()
    assert me["state"] == "resolved" and me["csat_pending"] == ticket.id
    async with services.db.read() as s:
        assert await s.get(Member, (conv, agent.id)) is not None  # history stays theirs

    again = await w.ask_bot(client, v, conv, "退款多久能到账？")
    assert again["sender_id"] == w.bot["user_id"] and again["data"]["ai"]["sources"]
    assert (await w.state(conv)).state == "bot"
    assert await w.transitions(conv) == [
        ("bot", "waiting", "user_requested"),
        ("waiting", "assigned", "round_robin"),
        ("assigned", "resolved", "resolved"),
        ("resolved", "bot", "visitor_message"),
    ]
    r = await client.get(f"/support/conversations/{conv}/transitions", headers=agent.headers)
    actors = [(t["to_state"], t["actor_id"]) for t in r.json()]
    assert actors == [("waiting", v.id), ("assigned", None), ("resolved", agent.id),
                      ("bot", v.id)]  # fmt: skip
    async with services.db.read() as s:
        events = (
            await s.scalars(
                select(Event.payload)
                .where(Event.conversation_id == conv, Event.type == "support.state_changed")
                .order_by(Event.seq)
            )
        ).all()
    assert [e["state"] for e in events] == ["waiting", "assigned", "resolved", "bot"]
    assert events[1]["assignee_id"] == agent.id and events[0]["position"] == 1


async def test_no_bot_message_appears_while_waiting_or_assigned(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    await w.say(client, v, conv, "I want to talk to a human")
    for question in (REFUND_QUESTION, "退款多久能到账？", "hello?"):
        await w.say(client, v, conv, question)
    await w.quiet()
    assert (await w.state(conv)).state == "waiting"
    assert bot_messages(await messages_of(client, v, conv), w.bot["user_id"]) == []

    agent = await w.agent("amy")
    await w.say(client, v, conv, REFUND_QUESTION)
    await w.say(client, agent, conv, "Let me check that for you.")
    await w.quiet()
    assert (await w.state(conv)).state == "assigned"
    assert bot_messages(await messages_of(client, v, conv), w.bot["user_id"]) == []
    jobs = await services.jobs.queue.list(w.tenant_id, kind="ai.reply")
    assert jobs == [], "no reply job is even enqueued while a person owns the conversation"


async def test_a_reply_enqueued_before_a_takeover_never_posts(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    agent = await w.agent("amy")
    await services.jobs.stop()  # the reply job waits in the queue, as on a busy node
    try:
        question = await w.say(client, v, conv, REFUND_QUESTION)
        [job] = await services.jobs.queue.list(w.tenant_id, kind="ai.reply")
        assert job.status == "pending" and job.payload["message_id"] == question["id"]
        r = await client.post(f"/support/conversations/{conv}/takeover", headers=agent.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["reason"], r.json()["assignee_id"]) == ("agent_takeover", agent.id)
    finally:
        await services.jobs.start()
    await w.quiet()
    [job] = await services.jobs.queue.list(w.tenant_id, kind="ai.reply")
    assert job.status == "done" and job.result == {"skipped": True, "silenced": True}
    assert bot_messages(await messages_of(client, v, conv), w.bot["user_id"]) == []
    assert await w.transitions(conv) == [("bot", "assigned", "agent_takeover")]


async def test_an_agent_takes_over_a_bot_conversation_and_the_bot_goes_quiet(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    await w.ask_bot(client, v, conv, REFUND_QUESTION)
    agent = await w.agent("amy", capacity=1)
    r = await client.get("/support/conversations", params={"state": "bot"}, headers=agent.headers)
    assert [c["conversation_id"] for c in r.json()] == [conv]
    r = await client.post(f"/support/conversations/{conv}/takeover", headers=agent.headers)
    assert r.status_code == 200, r.text
    ticket_id = r.json()["id"]
    # Taking over again is idempotent; another agent must ask for a transfer.
    again = await client.post(f"/support/conversations/{conv}/takeover", headers=agent.headers)
    assert again.status_code == 200 and again.json()["id"] == ticket_id
    other = await w.agent("bob")
    r = await client.post(f"/support/conversations/{conv}/takeover", headers=other.headers)
    assert r.status_code == 409
    before = len(bot_messages(await messages_of(client, v, conv), w.bot["user_id"]))
    await w.say(client, v, conv, "退款多久能到账？")
    await w.quiet()
    assert len(bot_messages(await messages_of(client, v, conv), w.bot["user_id"])) == before
    async with services.db.read() as s:
        ticket = await s.get(SupportTicket, ticket_id)
    assert ticket is not None and ticket.reason == "agent_takeover"


async def test_only_agents_move_conversations(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    v, conv = await w.visitor("vera")
    member = await w.tenant.user("mona")
    for who in (v, member):
        r = await client.post(f"/support/conversations/{conv}/takeover", headers=who.headers)
        assert r.status_code == 403, r.text
    with pytest.raises(Forbidden):
        await services.support.takeover(
            Principal(tenant_id=w.tenant_id, user_id=member.id, role="member"), conv
        )
