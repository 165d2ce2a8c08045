"""Direct conversations and groups through the REST API: members, roles, settings, the
conversation list, mentions and replies."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import group_of, send


async def _direct(client: httpx.AsyncClient, me: Any, other: Any) -> httpx.Response:
    return await client.post(
        "/conversations", json={"kind": "direct", "user_id": other.id}, headers=me.headers
    )


async def _members(client: httpx.AsyncClient, actor: Any, conv: str) -> dict[str, str]:
    r = await client.get(f"/conversations/{conv}/members", headers=actor.headers)
    assert r.status_code == 200, r.text
    return {m["user_id"]: m["role"] for m in r.json()}


async def _history(client: httpx.AsyncClient, actor: Any, conv: str) -> list[dict[str, Any]]:
    r = await client.get(f"/conversations/{conv}/messages?limit=200", headers=actor.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])


# -- direct -----------------------------------------------------------------------------


async def test_a_direct_conversation_is_found_again_from_either_side(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    first = await _direct(client, ann, bo)
    again = await _direct(client, ann, bo)
    other_side = await _direct(client, bo, ann)
    assert (first.status_code, again.status_code, other_side.status_code) == (201, 200, 200)
    assert first.json()["id"] == again.json()["id"] == other_side.json()["id"]
    assert await _members(client, ann, first.json()["id"]) == {ann.id: "member", bo.id: "member"}
    mine = (await client.get("/conversations", headers=ann.headers)).json()
    assert [c["id"] for c in mine] == [first.json()["id"]]


async def test_opening_the_same_direct_conversation_concurrently_creates_one(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    answers = await asyncio.gather(
        *[_direct(client, ann, bo) for _ in range(4)], *[_direct(client, bo, ann) for _ in range(4)]
    )
    assert all(r.status_code in (200, 201) for r in answers), [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert [r.status_code for r in answers].count(201) == 1
    assert len((await client.get("/conversations", headers=bo.headers)).json()) == 1


async def test_a_direct_conversation_has_exactly_two_members_who_cannot_change(client, make_tenant):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    conv = (await _direct(client, ann, bo)).json()["id"]
    r = await client.post(f"/conversations/{conv}/members", json={"user_ids": [cy.id]},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await client.delete(f"/conversations/{conv}/members/{ann.id}", headers=ann.headers)
    assert r.status_code == 403
    r = await client.patch(f"/conversations/{conv}", json={"title": "x"}, headers=ann.headers)
    assert r.status_code == 403
    assert await _members(client, bo, conv) == {ann.id: "member", bo.id: "member"}


async def test_a_direct_conversation_needs_another_existing_user(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    r = await client.post("/conversations", json={"kind": "direct", "user_id": ann.id},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 400
    r = await client.post("/conversations",
                          json={"kind": "direct", "user_id": "01J00000000000000000000000"},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 404
    assert (await client.get("/conversations", headers=ann.headers)).json() == []


# -- groups -----------------------------------------------------------------------------


async def test_a_group_has_an_owner_and_members_and_explains_changes_in_history(
    client, make_tenant
):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    conv = await group_of(client, ann, bo, title="Launch")
    assert await _members(client, bo, conv) == {ann.id: "owner", bo.id: "member"}
    r = await client.post(f"/conversations/{conv}/members", json={"user_ids": [cy.id, bo.id]},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 201 and [m["user_id"] for m in r.json()] == [cy.id]
    r = await client.patch(f"/conversations/{conv}",
                           json={"title": "Launch v2", "announcement": "Ship Friday"},
                           headers=ann.headers)  # fmt: skip
    assert r.status_code == 200
    assert (r.json()["title"], r.json()["announcement"]) == ("Launch v2", "Ship Friday")
    r = await client.delete(f"/conversations/{conv}/members/{bo.id}", headers=ann.headers)
    assert r.status_code == 204
    system = [m["data"] for m in await _history(client, cy, conv) if m["kind"] == "system"]
    assert [d["event"] for d in system] == [
        "member.added", "member.added", "conversation.updated", "member.removed",
    ]  # fmt: skip
    assert system[1]["user_ids"] == [cy.id]
    assert system[2]["changed"] == ["announcement", "title"]
    assert system[3]["user_ids"] == [bo.id] and system[3]["actor_id"] == ann.id
    r = await client.get(f"/conversations/{conv}", headers=bo.headers)
    assert r.status_code == 404  # bo was removed: the group is gone for him


async def test_admins_manage_members_but_only_the_owner_manages_admins(client, make_tenant):
    t = await make_tenant()
    ann, bo, cy, di = [await t.user(n) for n in ("ann", "bo", "cy", "di")]
    conv = await group_of(client, ann, bo, cy)
    r = await client.patch(f"/conversations/{conv}/members/{bo.id}", json={"role": "admin"},
                           headers=ann.headers)  # fmt: skip
    assert r.status_code == 200 and r.json()["role"] == "admin"
    # The admin adds and removes plain members and edits the group...
    r = await client.post(f"/conversations/{conv}/members", json={"user_ids": [di.id]},
                          headers=bo.headers)  # fmt: skip
    assert r.status_code == 201
    r = await client.delete(f"/conversations/{conv}/members/{di.id}", headers=bo.headers)
    assert r.status_code == 204
    r = await client.patch(f"/conversations/{conv}", json={"title": "by bo"}, headers=bo.headers)
    assert r.status_code == 200
    # ...but cannot remove the owner, change roles, or remove another admin.
    r = await client.delete(f"/conversations/{conv}/members/{ann.id}", headers=bo.headers)
    assert r.status_code == 403
    r = await client.patch(f"/conversations/{conv}/members/{cy.id}", json={"role": "admin"},
                           headers=bo.headers)  # fmt: skip
    assert r.status_code == 403
    assert await _members(client, ann, conv) == {ann.id: "owner", bo.id: "admin", cy.id: "member"}


async def test_a_member_leaves_by_removing_themselves(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    r = await client.delete(f"/conversations/{conv}/members/{bo.id}", headers=bo.headers)
    assert r.status_code == 204
    assert await _members(client, ann, conv) == {ann.id: "owner"}
    assert (await client.get("/conversations", headers=bo.headers)).json() == []


async def test_an_owner_who_leaves_hands_the_group_to_an_admin_first(client, make_tenant):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    conv = await group_of(client, ann, bo, cy)
    await client.patch(f"/conversations/{conv}/members/{cy.id}", json={"role": "admin"},
                       headers=ann.headers)  # fmt: skip
    r = await client.delete(f"/conversations/{conv}/members/{ann.id}", headers=ann.headers)
    assert r.status_code == 204
    assert await _members(client, bo, conv) == {bo.id: "member", cy.id: "owner"}
    # With no admin left, the longest-standing member inherits.
    r = await client.delete(f"/conversations/{conv}/members/{cy.id}", headers=cy.headers)
    assert r.status_code == 204
    assert await _members(client, bo, conv) == {bo.id: "owner"}


async def test_the_owner_hands_ownership_over_and_becomes_an_admin(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    r = await client.patch(f"/conversations/{conv}/members/{bo.id}", json={"role": "owner"},
                           headers=ann.headers)  # fmt: skip
    assert r.status_code == 200
    assert await _members(client, ann, conv) == {ann.id: "admin", bo.id: "owner"}


async def test_mute_is_per_member(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    r = await client.put(f"/conversations/{conv}/settings", json={"muted": True},
                         headers=bo.headers)  # fmt: skip
    assert r.status_code == 200 and r.json()["me"]["muted"] is True
    bo_view = (await client.get(f"/conversations/{conv}", headers=bo.headers)).json()
    ann_view = (await client.get(f"/conversations/{conv}", headers=ann.headers)).json()
    assert (bo_view["me"]["muted"], ann_view["me"]["muted"]) == (True, False)
    members = (await client.get(f"/conversations/{conv}/members", headers=ann.headers)).json()
    assert {m["user_id"]: m["muted"] for m in members} == {ann.id: False, bo.id: True}


async def test_a_group_title_is_required_and_bounded(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    for title in ("", "   ", "x" * 201):
        r = await client.post(
            "/conversations", json={"kind": "group", "title": title, "member_ids": [bo.id]},
            headers=ann.headers,
        )  # fmt: skip
        assert r.status_code in (400, 422), (title, r.text)
    conv = await group_of(client, ann, bo, title="  Trimmed  ")
    assert (await client.get(f"/conversations/{conv}", headers=ann.headers)).json()[
        "title"
    ] == "Trimmed"
    assert len((await client.get("/conversations", headers=ann.headers)).json()) == 1


# -- the list ---------------------------------------------------------------------------


async def test_my_conversations_are_sorted_by_activity_with_unread_and_last_message(
    client, make_tenant
):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    quiet = await group_of(client, ann, bo, title="quiet")
    # The "ann added bo" system message is news to bo, not to ann who did it.
    assert (await client.get(f"/conversations/{quiet}", headers=ann.headers)).json()["me"][
        "unread"
    ] == 0
    assert (await client.get(f"/conversations/{quiet}", headers=bo.headers)).json()["me"][
        "unread"
    ] == 1
    busy = await group_of(client, ann, bo, title="busy")
    await send(client, ann, busy, "one")
    await send(client, ann, quiet, "two")
    await send(client, ann, quiet, "three")
    listed = (await client.get("/conversations", headers=bo.headers)).json()
    assert [c["title"] for c in listed] == ["quiet", "busy"]
    by_title = {c["title"]: c for c in listed}
    assert by_title["quiet"]["last_message"]["text"] == "three"
    assert by_title["busy"]["last_message"]["text"] == "one"
    # Unread for bo: the system message that added him and everything after it.
    assert (by_title["quiet"]["me"]["unread"], by_title["busy"]["me"]["unread"]) == (3, 2)
    mine = {c["title"]: c["me"]["unread"] for c in
            (await client.get("/conversations", headers=ann.headers)).json()}  # fmt: skip
    assert mine == {"quiet": 0, "busy": 0}
    await send(client, bo, busy, "now busy again")
    listed = (await client.get("/conversations", headers=ann.headers)).json()
    assert [c["title"] for c in listed] == ["busy", "quiet"]
    assert listed[0]["me"]["unread"] == 1


# -- mentions and replies ---------------------------------------------------------------


async def test_mentions_must_be_members_and_at_all_is_for_owners_and_admins(client, make_tenant):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    conv = await group_of(client, ann, bo)
    url = f"/conversations/{conv}/messages"
    r = await client.post(url, json={"text": "hi @bo", "mentions": [bo.id]}, headers=ann.headers)
    assert r.status_code == 201 and r.json()["mentions"] == [bo.id]
    r = await client.post(url, json={"text": "hi @cy", "mentions": [cy.id]}, headers=ann.headers)
    assert r.status_code == 400 and r.json()["error"]["details"] == {"not_members": [cy.id]}
    r = await client.post(url, json={"text": "@all", "mention_all": True}, headers=bo.headers)
    assert r.status_code == 403
    r = await client.post(url, json={"text": "@all", "mention_all": True}, headers=ann.headers)
    assert r.status_code == 201 and r.json()["mention_all"] is True
    direct = (await _direct(client, ann, bo)).json()["id"]
    r = await client.post(f"/conversations/{direct}/messages",
                          json={"text": "@all", "mention_all": True}, headers=ann.headers)  # fmt: skip
    assert r.status_code == 403
    texts = [m["text"] for m in await _history(client, bo, conv) if m["kind"] == "text"]
    assert texts == ["hi @bo", "@all"]


async def test_reply_to_must_be_in_the_same_conversation(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    here = await group_of(client, ann, bo, title="here")
    there = await group_of(client, ann, bo, title="there")
    original = await send(client, ann, here, "question")
    elsewhere = await send(client, ann, there, "elsewhere")
    reply = await send(client, bo, here, "answer", reply_to_id=original["id"])
    assert reply["reply_to_id"] == original["id"]
    r = await client.post(f"/conversations/{here}/messages",
                          json={"text": "wrong", "reply_to_id": elsewhere["id"]},
                          headers=bo.headers)  # fmt: skip
    assert r.status_code == 404
    texts = [m["text"] for m in await _history(client, ann, here) if m["kind"] == "text"]
    assert texts == ["question", "answer"]
