"""Office hours per team and time zone: outside them the visitor is told when a person will
reply (local time and zone, in their language) and the ticket waits unassigned until the
office opens (the sweeper) or an agent picks it by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from tests.integration.support_world import messages_of, notices, support_world
from warbler.store.models_support import SupportTeam
from warbler.support.sweeper import SupportSweeper

ZONE = "Asia/Shanghai"
ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def closed_until() -> tuple[list[str], datetime]:
    """Holidays making "now" closed in Shanghai (today and tomorrow, so a midnight passing
    during the test changes nothing) and the instant the office opens again."""
    today = datetime.now(ZoneInfo(ZONE)).date()
    opens = datetime.combine(today + timedelta(days=2), datetime.min.time(), tzinfo=ZoneInfo(ZONE))
    return [today.isoformat(), (today + timedelta(days=1)).isoformat()], opens.astimezone(UTC)


async def closed_team(client, w, *members) -> str:
    holidays, _ = closed_until()
    r = await client.post(
        "/support/teams",
        json={"name": "Care 客服", "timezone": ZONE, "office_hours": ALL_DAY,
              "holidays": holidays, "sla_first_response_seconds": 3600,
              "member_ids": [m.id for m in members]},
        headers=w.owner.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    team = r.json()["id"]
    r = await client.put("/support/settings", json={"default_team_id": team},
                         headers=w.owner.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    return str(team)


async def test_outside_office_hours_the_visitor_is_told_when_a_person_will_reply(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    agent = await w.agent("night", capacity=5)
    team = await closed_team(client, w, agent)
    _, opens = closed_until()
    local = opens.astimezone(ZoneInfo(ZONE))

    zh_visitor, zh_conv = await w.visitor("lin", locale="zh")
    await w.say(client, zh_visitor, zh_conv, "转人工")
    told = notices(await messages_of(client, zh_visitor, zh_conv))[-1]
    support = told["data"]["support"]
    assert support["event"] == "office_closed" and support["timezone"] == ZONE
    assert datetime.fromisoformat(support["next_open_at"]) == opens
    assert f"{local.month}月{local.day}日" in told["text"]
    assert "00:00（Asia/Shanghai 时间）" in told["text"] and "人工客服将于" in told["text"]

    en_visitor, en_conv = await w.visitor("lee", locale="en")
    await w.say(client, en_visitor, en_conv, "can I talk to a human?")
    told = notices(await messages_of(client, en_visitor, en_conv))[-1]
    assert f"a person will reply from {local.strftime('%A')} {local.day}" in told["text"]
    assert "00:00 (Asia/Shanghai time)" in told["text"]

    # The online agent in the team gets nothing automatically; the tickets wait.
    for conv in (zh_conv, en_conv):
        ticket = await w.ticket(conv)
        assert (ticket.state, ticket.team_id, ticket.assignee_id) == ("waiting", team, None)
        assert ticket.sla_first_response_due == ticket.queued_at + timedelta(hours=1)
    me = (await client.get("/support/me", headers=zh_visitor.headers)).json()
    assert me["office"]["open"] is False and me["office"]["timezone"] == ZONE
    assert datetime.fromisoformat(me["office"]["next_open_at"]) == opens
    assert me["ticket"]["expected_wait_seconds"] > (opens - datetime.now(UTC)).total_seconds()

    # An agent may still pick one by hand.
    first = await w.ticket(zh_conv)
    r = await client.post(f"/support/tickets/{first.id}/pick", headers=agent.headers)
    assert r.status_code == 200 and r.json()["assignee_id"] == agent.id


async def test_the_sweeper_assigns_waiting_tickets_when_the_office_opens(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    agent = await w.agent("morning", capacity=5)
    team = await closed_team(client, w, agent)
    v, conv = await w.visitor("vera")
    await w.say(client, v, conv, "representative")
    assert (await w.ticket(conv)).state == "waiting"
    sweeper = next(b for b in services.background if isinstance(b, SupportSweeper))
    assert await sweeper.sweep() == 0, "still closed"
    # The holidays pass (as time would): the next sweep opens the door.
    async with services.db.write() as s:
        await s.execute(update(SupportTeam).where(SupportTeam.id == team).values(holidays=[]))
    assert await sweeper.sweep() == 1
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.assignee_id) == ("assigned", agent.id)
    assert (await w.transitions(conv))[-1] == ("waiting", "assigned", "round_robin")


async def test_office_hours_are_validated(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    for body in (
        {"name": "x", "timezone": "Mars/Base"},
        {"name": "x", "office_hours": {"funday": [["09:00", "17:00"]]}},
        {"name": "x", "office_hours": {"mon": [["9am", "5pm"]]}},
        {"name": "x", "holidays": ["christmas"]},
    ):
        r = await client.post("/support/teams", json=body, headers=w.owner.headers)
        assert r.status_code in (400, 422), (body, r.text)
        assert r.json()["error"]["code"] in ("invalid_request", "validation_error"), r.text
