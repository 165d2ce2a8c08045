"""Read markers, unread counts, receipts, and typing through the REST API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import group_of, send


async def read(client: httpx.AsyncClient, actor: Any, conv: str, seq: int) -> httpx.Response:
    return await client.post(
        f"/conversations/{conv}/read", json={"seq": seq}, headers=actor.headers
    )


async def unread(client: httpx.AsyncClient, actor: Any, conv: str) -> int:
    r = await client.get(f"/conversations/{conv}", headers=actor.headers)
    return int(r.json()["me"]["unread"])


async def test_marking_read_moves_the_marker_forward_only(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    sent = [await send(client, ann, conv, f"m{i}") for i in range(4)]
    last = sent[-1]["seq"]
    assert await unread(client, bo, conv) == last  # the join message and the four texts
    r = await read(client, bo, conv, sent[1]["seq"])
    assert r.status_code == 200
    assert r.json() == {"conversation_id": conv, "last_read_seq": sent[1]["seq"], "unread": 2}
    r = await read(client, bo, conv, sent[0]["seq"])  # going back is ignored
    assert r.json()["last_read_seq"] == sent[1]["seq"] and r.json()["unread"] == 2
    r = await read(client, bo, conv, last + 100)  # past the end stops at the end
    assert r.json() == {"conversation_id": conv, "last_read_seq": last, "unread": 0}
    assert await unread(client, bo, conv) == 0
    await send(client, ann, conv, "one more")
    assert await unread(client, bo, conv) == 1
    assert await unread(client, ann, conv) == 0  # one's own messages are read


async def test_receipts_list_each_members_marker(client, make_tenant):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    conv = await group_of(client, ann, bo, cy)
    m1 = await send(client, ann, conv, "first")
    m2 = await send(client, ann, conv, "second")
    await read(client, bo, conv, m1["seq"])
    await read(client, cy, conv, m2["seq"])
    r = await client.get(f"/conversations/{conv}/receipts", headers=bo.headers)
    assert r.status_code == 200
    markers = {x["user_id"]: x["last_read_seq"] for x in r.json()}
    assert markers == {ann.id: m2["seq"], bo.id: m1["seq"], cy.id: m2["seq"]}
    # Who has read the second message: everyone whose marker reached its seq.
    assert {u for u, seq in markers.items() if seq >= m2["seq"]} == {ann.id, cy.id}


async def test_read_and_receipts_are_for_members_only(client, make_tenant):
    t = await make_tenant()
    ann, bo, out = await t.user("ann"), await t.user("bo"), await t.user("out")
    conv = await group_of(client, ann, bo)
    await send(client, ann, conv, "hi")
    assert (await read(client, out, conv, 1)).status_code == 404
    r = await client.get(f"/conversations/{conv}/receipts", headers=out.headers)
    assert r.status_code == 404
    r = await client.post(f"/conversations/{conv}/read", json={"seq": -1}, headers=bo.headers)
    assert r.status_code == 422
    markers = (await client.get(f"/conversations/{conv}/receipts", headers=ann.headers)).json()
    assert out.id not in {x["user_id"] for x in markers}


async def test_the_conversation_list_shows_unread_per_conversation(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    a = await group_of(client, ann, bo, title="a")
    b = await group_of(client, ann, bo, title="b")
    for i in range(3):
        await send(client, ann, a, f"a{i}")
    last_b = await send(client, ann, b, "b0")
    await read(client, bo, b, last_b["seq"])
    listed = {c["title"]: c["me"]["unread"] for c in
              (await client.get("/conversations", headers=bo.headers)).json()}  # fmt: skip
    assert listed == {"a": 4, "b": 0}


async def test_typing_is_204_for_members_and_404_for_others(client, make_tenant):
    t = await make_tenant()
    ann, bo, out = await t.user("ann"), await t.user("bo"), await t.user("out")
    conv = await group_of(client, ann, bo)
    url = f"/conversations/{conv}/typing"
    r = await client.post(url, json={}, headers=bo.headers)
    assert r.status_code == 204 and r.content == b""
    r = await client.post(url, json={"state": "stopped"}, headers=bo.headers)
    assert r.status_code == 204
    r = await client.post(url, json={}, headers=out.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.post(url, json={"state": "dancing"}, headers=bo.headers)
    assert r.status_code == 422
    r = await client.post("/conversations/01J00000000000000000000000/typing", json={},
                          headers=bo.headers)  # fmt: skip
    assert r.status_code == 404


async def test_typing_and_receipts_are_published_live_and_typing_is_throttled(
    client, make_tenant, services
):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    msg = await send(client, ann, conv, "hi")
    seen: list[Any] = []
    services.bus.subscribe(lambda e: seen.append(e) if e.type in ("typing", "receipt") else None)
    url = f"/conversations/{conv}/typing"
    for _ in range(3):  # one event per 2 s while typing goes on
        assert (await client.post(url, json={}, headers=bo.headers)).status_code == 204
    await client.post(url, json={"state": "stopped"}, headers=bo.headers)
    await read(client, bo, conv, msg["seq"])
    await read(client, bo, conv, msg["seq"])  # no move, no receipt
    assert [(e.type, e.data.get("state")) for e in seen] == [
        ("typing", "typing"), ("typing", "stopped"), ("receipt", None),
    ]  # fmt: skip
    typing = seen[0]
    assert (typing.conversation_id, typing.skip_user_id) == (conv, bo.id)  # not echoed to bo
    assert seen[2].data == {"conversation_id": conv, "user_id": bo.id, "seq": msg["seq"]}
    # None of it is stored in the resume log.
    events = (await client.get("/events", params={"cursor": 0}, headers=ann.headers)).json()
    assert not {e["event"] for e in events["events"]} & {"typing", "receipt"}
