"""CSAT: the ticket's visitor rates it 1-5 once it is resolved, once, with an optional
comment; the rating is an event on the conversation and is thanked in the visitor's language."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from tests.integration.support_world import messages_of, notices, support_world
from warbler.store.models import Event


async def _resolved(client, w, name: str = "vera", locale: str = "en"):
    vera, conv = await w.visitor(name, locale=locale)
    await w.say(client, vera, conv, "I want to talk to a human")
    amy = w.agents.get("amy") or await w.agent("amy", capacity=5)
    ticket = await w.ticket(conv)
    assert ticket.assignee_id == amy.id
    await w.say(client, amy, conv, "Done, anything else?")
    r = await client.post(f"/support/tickets/{ticket.id}/resolve", headers=amy.headers)
    assert r.status_code == 200, r.text
    return vera, conv, amy, ticket.id


async def test_the_visitor_rates_a_resolved_ticket_once(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    vera, conv, amy, ticket_id = await _resolved(client, w, locale="zh")
    me = (await client.get("/support/me", headers=vera.headers)).json()
    assert me["csat_pending"] == ticket_id
    r = await client.post(
        f"/support/tickets/{ticket_id}/csat", json={"score": 5, "comment": "  很好，谢谢！ "},
        headers=vera.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    rated = r.json()
    assert (rated["ticket_id"], rated["conversation_id"]) == (ticket_id, conv)
    assert (rated["score"], rated["comment"]) == (5, "很好，谢谢！") and rated["rated_at"]

    again = await client.post(f"/support/tickets/{ticket_id}/csat", json={"score": 1},
                              headers=vera.headers)  # fmt: skip
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_rated"
    ticket = await w.ticket(conv)
    assert (ticket.csat_score, ticket.csat_comment) == (5, "很好，谢谢！")
    assert ticket.csat_at is not None
    me = (await client.get("/support/me", headers=vera.headers)).json()
    assert me["csat_pending"] is None

    # Thanked in the conversation's language, with the facts for the widget.
    thanks = notices(await messages_of(client, vera, conv))[-1]
    assert thanks["text"] == "感谢您的评价！"
    assert thanks["data"]["support"]["event"] == "csat_thanks"
    assert thanks["data"]["support"]["score"] == 5
    assert thanks["data"]["support"]["ticket_id"] == ticket_id
    # A stored event on the conversation: the agent (a member) gets it too.
    async with services.db.read() as s:
        payloads = (
            await s.scalars(
                select(Event.payload).where(
                    Event.conversation_id == conv, Event.type == "support.csat_submitted"
                )
            )
        ).all()
    assert payloads == [
        {"conversation_id": conv, "ticket_id": ticket_id, "score": 5, "comment": "很好，谢谢！"}
    ]
    events = (await client.get("/events", params={"cursor": 0}, headers=amy.headers)).json()
    assert [e["data"]["score"] for e in events["events"]
            if e["event"] == "support.csat_submitted"] == [5]  # fmt: skip


async def test_ratings_are_checked(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    vera, conv, amy, ticket_id = await _resolved(client, w)
    walt, walt_conv, _, walt_ticket = await _resolved(client, w, name="walt")
    url = f"/support/tickets/{ticket_id}/csat"
    for body in ({"score": 0}, {"score": 6}, {"score": "five"}, {"score": 4.5}, {},
                 {"score": 3, "comment": "x" * 1001}, {"score": 3, "extra": True}):  # fmt: skip
        r = await client.post(url, json=body, headers=vera.headers)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
    # Someone else's ticket: another visitor, the agent, the owner.
    for other in (walt, amy, w.owner):
        r = await client.post(url, json={"score": 1}, headers=other.headers)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
    r = await client.post("/support/tickets/01HZZZZZZZZZZZZZZZZZZZZZZZ/csat", json={"score": 1},
                          headers=vera.headers)  # fmt: skip
    assert r.status_code == 404
    # Not resolved (again waiting after the visitor asked for a person once more).
    await w.say(client, vera, conv, "I want to talk to a human again")
    reopened = await w.ticket(conv)
    assert reopened.id != ticket_id and reopened.state in ("waiting", "assigned")
    r = await client.post(f"/support/tickets/{reopened.id}/csat", json={"score": 2},
                          headers=vera.headers)  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_resolved"
    assert r.json()["error"]["details"]["state"] == reopened.state
    # The earlier, resolved ticket can still be rated; an empty comment is no comment.
    r = await client.post(url, json={"score": 4, "comment": "  "}, headers=vera.headers)
    assert r.status_code == 201 and r.json()["comment"] is None
    assert (await w.ticket(walt_conv)).csat_score is None
    assert walt_ticket != ticket_id


async def test_the_thanks_follow_the_conversation_language(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    vera, conv, _amy, ticket_id = await _resolved(client, w, locale="en")
    r = await client.post(f"/support/tickets/{ticket_id}/csat", json={"score": 3},
                          headers=vera.headers)  # fmt: skip
    assert r.status_code == 201
    thanks = notices(await messages_of(client, vera, conv))[-1]
    assert thanks["text"] == "Thank you for your feedback!"


async def test_two_ratings_at_once_exactly_one_lands(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    vera, conv, _amy, ticket_id = await _resolved(client, w)
    url = f"/support/tickets/{ticket_id}/csat"
    first, second = await asyncio.gather(
        client.post(url, json={"score": 2}, headers=vera.headers),
        client.post(url, json={"score": 4}, headers=vera.headers),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    landed = first if first.status_code == 201 else second
    assert (await w.ticket(conv)).csat_score == landed.json()["score"]
    thanks = [n for n in notices(await messages_of(client, vera, conv))
              if n["data"]["support"].get("event") == "csat_thanks"]  # fmt: skip
    assert len(thanks) == 1
