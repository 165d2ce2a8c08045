"""Internal notes: agents write and read them on a support conversation; the visitor never
sees one, through the history, the event log or the WebSocket."""

from __future__ import annotations

import json

import websockets
from sqlalchemy import select

from tests.conftest import group_of
from tests.integration.support_world import messages_of, support_world
from tests.integration.test_ai_replies import _frames_until, serving
from warbler.store.models_audit import AuditEntry

SECRET = "internal-only 内部备注 refund-was-approved"


async def _assigned(client, w):
    vera, conv = await w.visitor("vera", locale="zh")
    await w.say(client, vera, conv, "转人工")
    amy = await w.agent("amy")  # online: takes the waiting ticket
    ticket = await w.ticket(conv)
    assert ticket.assignee_id == amy.id
    return vera, conv, amy, ticket


async def test_agents_write_and_read_notes_that_the_visitor_never_sees(
    app, client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    vera, conv, amy, ticket = await _assigned(client, w)
    bob = await w.agent("bob")  # another agent, not a member of the conversation
    async with (
        serving(app) as ws_url,
        websockets.connect(f"{ws_url}?cursor=0", additional_headers=vera.headers) as ws,
    ):
        await _frames_until(ws, lambda f: f.get("type") == "synced")
        r = await client.post(
            f"/support/conversations/{conv}/notes", json={"text": f"  {SECRET}  "},
            headers=amy.headers,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        note = r.json()
        r = await client.post(
            f"/support/conversations/{conv}/notes", json={"text": "bob: call them back 回电"},
            headers=bob.headers,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        # The agent's next message reaches the visitor; nothing of the notes came before it.
        await w.say(client, amy, conv, "after the notes")
        frames = await _frames_until(
            ws, lambda f: f.get("event") == "message.new"
            and f["data"]["message"]["text"] == "after the notes",
        )  # fmt: skip
    assert note["text"] == SECRET and note["ticket_id"] == ticket.id
    assert note["author"] == {"id": amy.id, "display_name": "amy"}
    assert SECRET not in json.dumps(frames, ensure_ascii=False)
    assert "回电" not in json.dumps(frames, ensure_ascii=False)

    history = json.dumps(await messages_of(client, vera, conv), ensure_ascii=False)
    events = (await client.get("/events", params={"cursor": 0}, headers=vera.headers)).json()
    for seen in (history, json.dumps(events, ensure_ascii=False)):
        assert "after the notes" in seen  # the visitor's views work...
        assert SECRET not in seen and "回电" not in seen  # ...and hold no note
    r = await client.get(f"/support/conversations/{conv}/notes", headers=vera.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await client.post(f"/support/conversations/{conv}/notes", json={"text": "mine"},
                          headers=vera.headers)  # fmt: skip
    assert r.status_code == 403

    for reader in (amy, bob, w.owner):
        r = await client.get(f"/support/conversations/{conv}/notes", headers=reader.headers)
        assert r.status_code == 200, r.text
        assert [n["text"] for n in r.json()] == [SECRET, "bob: call them back 回电"]
        assert [n["author"]["id"] for n in r.json()] == [amy.id, bob.id]
    r = await client.get(
        f"/support/conversations/{conv}/notes", params={"limit": 1}, headers=amy.headers
    )
    assert [n["author"]["id"] for n in r.json()] == [bob.id]  # the newest
    async with services.db.read() as s:
        actions = (
            await s.execute(
                select(AuditEntry.action, AuditEntry.actor_id, AuditEntry.data).where(
                    AuditEntry.tenant_id == w.tenant_id, AuditEntry.target_id == conv,
                    AuditEntry.action.in_(["support.note_added", "support.read"]),
                )
            )
        ).all()  # fmt: skip
    assert ("support.note_added", amy.id) in {(a, u) for a, u, _ in actions}
    assert any(a == "support.read" and u == bob.id and d == {"part": "notes"}
               for a, u, d in actions)  # fmt: skip
    assert all(SECRET not in json.dumps(d, ensure_ascii=False) for _, _, d in actions)


async def test_notes_are_checked_and_only_on_support_conversations(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    _vera, conv, amy, _ticket = await _assigned(client, w)
    member = await w.tenant.user("mona")
    url = f"/support/conversations/{conv}/notes"
    r = await client.post(url, json={"text": ""}, headers=amy.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = await client.post(url, json={"text": "   "}, headers=amy.headers)
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "text"
    r = await client.post(url, json={"text": "x" * 5001}, headers=amy.headers)
    assert r.status_code == 422
    r = await client.post(url, json={"text": "x", "extra": 1}, headers=amy.headers)
    assert r.status_code == 422
    r = await client.get(url, headers=member.headers)
    assert r.status_code == 403
    group = await group_of(client, w.owner, amy, title="staff")
    r = await client.post(f"/support/conversations/{group}/notes", json={"text": "x"},
                          headers=amy.headers)  # fmt: skip
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.get(f"/support/conversations/{group}/notes", headers=amy.headers)
    assert r.status_code == 404
    # A note before any ticket belongs to no ticket.
    _v2, conv2 = await w.visitor("walt")
    r = await client.post(f"/support/conversations/{conv2}/notes", json={"text": "vip"},
                          headers=amy.headers)  # fmt: skip
    assert r.status_code == 201 and r.json()["ticket_id"] is None
