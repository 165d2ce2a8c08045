"""Erasing a user: who may, how it is confirmed, and what everyone else sees afterwards
(a "Deleted user 已删除用户" tombstone, history in order with placeholders, groups handed
over). That nothing of the user's data is left anywhere: test_erasure_no_trace.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.conftest import group_of, send
from warbler.privacy.erasure import TOMBSTONE_NAME
from warbler.store.models_audit import AuditEntry

PASSWORD = "correct horse battery"


async def erase(client: Any, admin: Any, user: Any, confirm: str | None = None) -> Any:
    return await client.post(
        f"/privacy/users/{user.id}/erase",
        json={"confirm": user.username if confirm is None else confirm},
        headers=admin.headers,
    )


async def test_only_an_admin_who_types_the_username_erases(client, make_tenant, services):
    t = await make_tenant()
    owner, admin = await t.user("olive", role="owner"), await t.user("ada", role="admin")
    max_, bo = await t.user("max"), await t.user("bo")
    bot = await t.user("helper-bot", kind="bot")
    assert (await erase(client, max_, bo)).status_code == 403
    wrong = await erase(client, admin, bo, confirm="Bo")
    assert wrong.status_code == 400 and wrong.json()["error"]["details"]["field"] == "confirm"
    assert (await erase(client, admin, owner)).status_code == 403  # admins cannot erase owners
    assert (await erase(client, admin, admin)).status_code == 400  # nor themselves
    assert (await erase(client, owner, bot)).status_code == 400  # bots are deleted instead
    r = await client.post("/privacy/users/01HZZZZZZZZZZZZZZZZZZZZZZZ/erase",
                          json={"confirm": "x"}, headers=owner.headers)  # fmt: skip
    assert r.status_code == 404
    # None of that changed anything.
    assert (await client.get("/users/me", headers=bo.headers)).status_code == 200

    r = await erase(client, admin, bo)
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == bo.id
    again = await erase(client, admin, bo, confirm=f"deleted-{bo.id.lower()}")
    assert again.status_code == 410


async def test_an_erased_user_is_a_tombstone_and_history_keeps_its_order(
    client, make_tenant, services
):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann", role="owner"), await t.user("bo"), await t.user("cy")
    shared = await group_of(client, ann, bo, cy)
    bos_group = await group_of(client, bo, cy, ann, title="Bo's group")
    first = await send(client, bo, shared, "hello from bo 你好")
    reply = await send(client, cy, shared, "hi bo", reply_to_id=first["id"])
    await send(client, bo, shared, "bye 再见")
    direct = (await client.post("/conversations", json={"kind": "direct", "user_id": ann.id},
                                headers=bo.headers)).json()["id"]  # fmt: skip
    await send(client, bo, direct, "just between us")
    seqs_before = [m["seq"] for m in (await _history(client, ann, shared))]

    r = await erase(client, ann, bo)
    assert r.status_code == 200, r.text
    counts = r.json()["counts"]
    assert counts["messages"] == 3 and counts["memberships"] == 3

    # The user row is a tombstone: same id, no name, no way in.
    profile = (await client.get(f"/users/{bo.id}", headers=ann.headers)).json()
    assert profile["display_name"] == TOMBSTONE_NAME and profile["disabled"] is True
    assert profile["username"] == f"deleted-{bo.id.lower()}"
    assert (await client.get("/users/me", headers=bo.headers)).status_code == 401
    login = await client.post("/auth/login",
                              json={"tenant": t.slug, "username": "bo", "password": PASSWORD})  # fmt: skip
    assert login.status_code == 401

    # Others' history reads in the same order; bo's messages are placeholders.
    history = await _history(client, ann, shared)
    assert [m["seq"] for m in history][: len(seqs_before)] == seqs_before
    by_id = {m["id"]: m for m in history}
    assert by_id[first["id"]]["recalled"] and by_id[first["id"]]["text"] is None
    assert by_id[first["id"]]["sender_id"] == bo.id
    assert (
        by_id[reply["id"]]["text"] == "hi bo" and by_id[reply["id"]]["reply_to_id"] == first["id"]
    )
    dm = await _history(client, ann, direct)
    assert [(m["text"], m["recalled"]) for m in dm if m["kind"] == "text"] == [(None, True)]
    found = await client.get("/search", params={"q": "你好"}, headers=ann.headers)
    assert found.json()["results"] == []

    # Bo left the groups; the group bo owned has a new owner.
    members = (await client.get(f"/conversations/{shared}/members", headers=ann.headers)).json()
    assert bo.id not in {m["user_id"] for m in members}
    owners = [m for m in (await client.get(f"/conversations/{bos_group}/members",
                                           headers=ann.headers)).json() if m["role"] == "owner"]  # fmt: skip
    assert [o["user_id"] for o in owners] in ([cy.id], [ann.id])
    # Clients are told to drop what they cached: a recall event per erased message.
    events = (await client.get("/events", params={"cursor": 0}, headers=ann.headers)).json()
    recalled = {e["data"]["message"]["id"] for e in events["events"]
                if e["event"] == "message.recalled"}  # fmt: skip
    assert first["id"] in recalled

    async with services.db.read() as s:
        entries = (await s.scalars(select(AuditEntry).where(
            AuditEntry.tenant_id == t.id, AuditEntry.action == "privacy.erase"))).all()  # fmt: skip
    assert [(e.actor_id, e.target_type, e.target_id) for e in entries] == [(ann.id, "user", bo.id)]
    assert "bo" not in str(entries[0].data)  # counts only, no name


async def test_an_api_key_with_admin_scope_erases(client, make_tenant):
    t = await make_tenant()
    await t.user("olive", role="owner")
    bo = await t.user("bo")
    key = await t.api_key("admin")
    weak = await t.api_key("users:write")
    r = await client.post(f"/privacy/users/{bo.id}/erase", json={"confirm": "bo"},
                          headers={"Authorization": f"Bearer {weak}"})  # fmt: skip
    assert r.status_code == 403
    r = await client.post(f"/privacy/users/{bo.id}/erase", json={"confirm": "bo"},
                          headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert r.status_code == 200, r.text


async def _history(client: Any, actor: Any, conv: str) -> list[dict[str, Any]]:
    r = await client.get(f"/conversations/{conv}/messages", params={"limit": 100},
                         headers=actor.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])
